/* fake-ssl-user.c - a library linked against fake-ssl.c, as libpq is
 * against a wheel's private libssl: its SSL_new calls reach the shim. */
#include <stddef.h>

struct fake_obj {
    unsigned magic;
};

void *SSL_new(struct fake_obj *ctx);
int lw_fake_user_handshake(void);

int lw_fake_user_handshake(void)
{
    static struct fake_obj ctx = {0x5ca1ab1e};
    return SSL_new(&ctx) != NULL;
}
