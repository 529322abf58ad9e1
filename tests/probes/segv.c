/* segv: dereference a null pointer for real (no raise()). */
#include "common.h"

int main(void)
{
    volatile int *volatile p = NULL;
    say("dereferencing null\n");
    *p = 42;
    say("survived\n");
    return 0;
}
