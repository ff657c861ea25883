#!/usr/bin/env python3
"""Writes the image fixtures of Tests/DataPipelineTests/ImageDecoderTests.swift and their expected pixels.

Run from this folder with a Python that has Pillow 13 (the tests themselves need no Python):

    /path/to/venv/bin/python make-fixtures.py

JPEGs are written by Pillow; PNGs by the small encoder below (Pillow cannot write 2-bit grey,
16-bit RGB(A), grey+alpha 16 or interlaced PNGs), with each row's filter chosen as row % 5 so
that all five PNG filters are exercised. NAME.rgb beside each image holds
`PIL.Image.open(NAME).convert("RGB").tobytes()`: torchvision's default loader's pixels.
"""
import random
import struct
import zlib

from PIL import Image

random.seed(20)


def pattern(width, height, channels, maximum):
    """Smooth ramps plus noise, so JPEG has edges and texture and PNG has every value range."""
    rows = []
    for y in range(height):
        row = []
        for x in range(width):
            for c in range(channels):
                ramp = (x * (c + 1) * maximum // max(1, width - 1) + y * maximum // max(1, height - 1)) // 2
                noise = random.randrange(maximum // 4 + 1)
                row.append(min(maximum, (ramp + noise) % (maximum + 1)))
        rows.append(row)
    return rows


# ---------------------------------------------------------------- PNG encoder

CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def pack_row(samples, bits):
    if bits == 8:
        return bytes(samples)
    if bits == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    out, acc, used = bytearray(), 0, 0
    for s in samples:
        acc = (acc << bits) | s
        used += bits
        if used == 8:
            out.append(acc)
            acc, used = 0, 0
    if used:
        out.append(acc << (8 - used))
    return bytes(out)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def filtered(rows, bpp, first_filter):
    out, previous = bytearray(), bytes(len(rows[0])) if rows else b""
    for index, row in enumerate(rows):
        kind = (first_filter + index) % 5
        line = bytearray()
        for i, value in enumerate(row):
            a = row[i - bpp] if i >= bpp else 0
            b = previous[i]
            c = previous[i - bpp] if i >= bpp else 0
            predictor = [0, a, b, (a + b) // 2, paeth(a, b, c)][kind]
            line.append((value - predictor) & 255)
        out.append(kind)
        out += line
        previous = row
    return bytes(out)


def write_png(name, pixels, width, height, bits, color, palette=None, trns=None, interlaced=False):
    channels = CHANNELS[color]
    bpp = max(1, channels * bits // 8)
    if interlaced:
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            sub = [pack_row([s for x in range(x0, width, dx) for s in pixels[y][x * channels:(x + 1) * channels]], bits)
                   for y in range(y0, height, dy)]
            if sub and sub[0]:
                raw += filtered(sub, bpp, x0 + y0)
    else:
        raw = filtered([pack_row(row, bits) for row in pixels], bpp, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bits, color, 0, 0, int(interlaced)))
    if palette is not None:
        data += chunk(b"PLTE", bytes(palette))
    if trns is not None:
        data += chunk(b"tRNS", trns)
    data += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    open(name, "wb").write(data)
    expect(name)


def expect(name):
    with Image.open(name) as image:
        open(name.rsplit(".", 1)[0] + ".rgb", "wb").write(image.convert("RGB").tobytes())


W, H = 13, 11
for bits in (1, 2, 4, 8, 16):
    write_png(f"grey{bits}.png", pattern(W, H, 1, 2**bits - 1), W, H, bits, 0)
# 16-bit grey below 256 too: Pillow clips each value to 255 rather than keeping the high byte.
low = [[v % 600 for v in row] for row in pattern(W, H, 1, 65535)]
write_png("grey16-low.png", low, W, H, 16, 0)
write_png("grey8-trns.png", pattern(W, H, 1, 255), W, H, 8, 0, trns=struct.pack(">H", 7))
write_png("greyalpha8.png", pattern(W, H, 2, 255), W, H, 8, 4)
write_png("greyalpha16.png", pattern(W, H, 2, 65535), W, H, 16, 4)
write_png("rgb8.png", pattern(W, H, 3, 255), W, H, 8, 2)
write_png("rgb8-trns.png", pattern(W, H, 3, 255), W, H, 8, 2, trns=struct.pack(">HHH", 1, 2, 3))
write_png("rgb16.png", pattern(W, H, 3, 65535), W, H, 16, 2)
write_png("rgba8.png", pattern(W, H, 4, 255), W, H, 8, 6)
write_png("rgba16.png", pattern(W, H, 4, 65535), W, H, 16, 6)
for bits in (1, 2, 4, 8):
    entries = 2**bits
    palette = [random.randrange(256) for _ in range(3 * entries)]
    write_png(f"palette{bits}.png", pattern(W, H, 1, entries - 1), W, H, bits, 3, palette=palette)
palette = [random.randrange(256) for _ in range(3 * 256)]
write_png("palette8-trns.png", pattern(W, H, 1, 255), W, H, 8, 3, palette=palette,
          trns=bytes(random.randrange(256) for _ in range(100)))
# Indices 10…15 have no palette entry: Pillow shows them black.
write_png("palette4-short.png", pattern(W, H, 1, 15), W, H, 4, 3, palette=palette[:30])
write_png("rgb8-adam7.png", pattern(W, H, 3, 255), W, H, 8, 2, interlaced=True)
write_png("grey2-adam7.png", pattern(W, H, 1, 3), W, H, 2, 0, interlaced=True)
write_png("palette4-adam7.png", pattern(W, H, 1, 15), W, H, 4, 3, palette=palette[:48], interlaced=True)
write_png("rgba16-adam7.png", pattern(W, H, 4, 65535), W, H, 16, 6, interlaced=True)
write_png("greyalpha16-adam7.png", pattern(W, H, 2, 65535), W, H, 16, 4, interlaced=True)
# 3×2: Adam7 passes 1, 3, 5 and 7 only; passes 2, 4 and 6 are empty.
write_png("rgb8-adam7-tiny.png", pattern(3, 2, 3, 255), 3, 2, 8, 2, interlaced=True)

# ---------------------------------------------------------------- JPEG (Pillow)


def image_of(mode, width, height):
    channels = len(mode) if mode != "L" else 1
    flat = [v for row in pattern(width, height, channels, 255) for v in row]
    return Image.frombytes(mode, (width, height), bytes(flat))


JW, JH = 37, 29
rgb = image_of("RGB", JW, JH)
for name, subsampling in (("rgb444", 0), ("rgb422", 1), ("rgb420", 2)):
    rgb.save(f"{name}.jpg", quality=90, subsampling=subsampling)
    expect(f"{name}.jpg")
rgb.save("progressive.jpg", quality=90, progressive=True)
expect("progressive.jpg")
rgb.save("restart.jpg", quality=75, restart_marker_blocks=2)
expect("restart.jpg")
image_of("L", JW, JH).save("grey.jpg", quality=90)
expect("grey.jpg")
# Pillow writes CMYK JPEGs Adobe-inverted (with an APP14 "Adobe" marker) and reads every CMYK
# JPEG as inverted ("CMYK;I"), then converts with its cmyk2rgb.
image_of("CMYK", JW, JH).save("cmyk.jpg", quality=90)
expect("cmyk.jpg")
# Three stray bytes before the EOI marker: libjpeg warns "3 extraneous bytes before marker
# 0xd9"; the image decodes whole (Pillow shows the same pixels as rgb420.jpg).
data = open("rgb420.jpg", "rb").read()
assert data.endswith(b"\xff\xd9")
open("extraneous.jpg", "wb").write(data[:-2] + b"\x01\x02\x03\xff\xd9")
expect("extraneous.jpg")
# ycck.jpg is written by make-ycck.c (run it first): a YCCK JPEG, read by Pillow like any CMYK one.
expect("ycck.jpg")
