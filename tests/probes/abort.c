/* abort: call abort(3). */
#include "common.h"

int main(void)
{
    say("aborting\n");
    abort();
}
