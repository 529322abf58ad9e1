/* dyn_hello: prints `hello`. Built both static (dyn_hello) and dynamically
 * linked (dyn_hello_dynamic) to prove dynamically linked guests run. */
#include <stdio.h>

int main(void)
{
    puts("hello");
    return 0;
}
