/* ident: print the identity and privileges the program runs with:
 *   uid=R/E/S gid=R/E/S
 *   no_new_privs=N
 *   cap_eff=HEX cap_prm=HEX cap_inh=HEX
 * Each line becomes `<what> errno=NAME` if the query fails. */
#include "common.h"
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

int main(void)
{
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
        say_errno("getresuid");
    else
        say("uid=%u/%u/%u gid=%u/%u/%u\n", ru, eu, su, rg, eg, sg);

    int nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
    if (nnp < 0)
        say_errno("no_new_privs");
    else
        say("no_new_privs=%d\n", nnp);

    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capget, &hdr, data) < 0) {
        say_errno("capget");
    } else {
        unsigned long long eff = ((unsigned long long)data[1].effective << 32) | data[0].effective;
        unsigned long long prm = ((unsigned long long)data[1].permitted << 32) | data[0].permitted;
        unsigned long long inh = ((unsigned long long)data[1].inheritable << 32) | data[0].inheritable;
        say("cap_eff=%llx cap_prm=%llx cap_inh=%llx\n", eff, prm, inh);
    }
    return 0;
}
