/* Preloaded into componentize-py (LD_PRELOAD) by thalo build; see thalo/wasm/entropy.py.
 *
 * Every getrandom(2)/getentropy(3) call returns the same fixed stream (splitmix64 from
 * a constant), so the randomness the guest sees while it is pre-initialised -- CPython's
 * hash secret above all -- is the same in every build. Restarting the stream at each
 * call keeps the result independent of which thread asks first. Build-time only: the
 * component never runs with it, and the sandbox seeds a guest's randomness itself.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

static void fill(void *buffer, size_t length) {
    uint64_t state = 0x7468616c6f2d7231ull; /* "thalo-r1" */
    unsigned char *out = buffer;
    while (length > 0) {
        uint64_t z = (state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        for (int i = 0; i < 8 && length > 0; i++, length--) {
            *out++ = (unsigned char)(z >> (8 * i));
        }
    }
}

ssize_t getrandom(void *buffer, size_t length, unsigned int flags) {
    (void)flags;
    fill(buffer, length);
    return (ssize_t)length;
}

int getentropy(void *buffer, size_t length) {
    fill(buffer, length);
    return 0;
}
