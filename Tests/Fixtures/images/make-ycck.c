/* Writes ycck.jpg: a 37×29 four-channel JPEG in the YCCK colour space (Adobe transform 2), which
 * Pillow cannot write. TurboJPEG compresses CMYK pixels as YCCK.
 *   cc make-ycck.c -lturbojpeg -o /tmp/make-ycck && /tmp/make-ycck   (then make-fixtures.py) */
#include <stdio.h>
#include <stdlib.h>
#include <turbojpeg.h>

int main(void) {
    enum { W = 37, H = 29 };
    unsigned char pixels[W * H * 4];
    unsigned int state = 20;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 4; c++) {
                state = state * 1103515245u + 12345u;
                pixels[(y * W + x) * 4 + c] = (unsigned char)((x * 7 * (c + 1) + y * 9) / 2 + (state >> 16) % 48);
            }
    tjhandle handle = tjInitCompress();
    unsigned char *jpeg = NULL;
    unsigned long size = 0;
    if (!handle || tjCompress2(handle, pixels, W, W * 4, H, TJPF_CMYK, &jpeg, &size, TJSAMP_420, 90, TJFLAG_ACCURATEDCT) != 0) {
        fprintf(stderr, "make-ycck: %s\n", tjGetErrorStr2(handle));
        return 1;
    }
    FILE *file = fopen("ycck.jpg", "wb");
    fwrite(jpeg, 1, size, file);
    fclose(file);
    tjFree(jpeg);
    tjDestroy(handle);
    return 0;
}
