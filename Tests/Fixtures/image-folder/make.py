# Makes the image-folder fixtures (run from this folder with Pillow: python3 make.py).
# small/: 32×32 JPEGs (quality 90), classes "circle", "square", "stripes": 8 training and
#         3 validation images each, drawn from a fixed seed, so a model can learn the classes.
# large/: the same classes at other sizes (120×90, 90×120, 75×100, 64×200), JPEG and PNG mixed,
#         4 training and 2 validation images each, plus one README.txt per split (skipped).
import os, random
from PIL import Image, ImageDraw

random.seed(20)
CLASSES = ["circle", "square", "stripes"]

def draw(kind, width, height):
    background = tuple(random.randrange(0, 120) for _ in range(3))
    image = Image.new("RGB", (width, height), background)
    pen = ImageDraw.Draw(image)
    colour = tuple(random.randrange(150, 256) for _ in range(3))
    side = min(width, height)
    x, y = random.randrange(0, width - side // 2 + 1), random.randrange(0, height - side // 2 + 1)
    size = side // 2
    if kind == "circle":
        pen.ellipse([x, y, x + size, y + size], fill=colour)
    elif kind == "square":
        pen.rectangle([x, y, x + size, y + size], fill=colour)
    else:
        step = max(2, side // 8)
        for row in range(0, height, 2 * step):
            pen.rectangle([0, row, width, row + step - 1], fill=colour)
    return image

def write(folder, sizes, per_class, formats):
    for split, count in per_class.items():
        for kind in CLASSES:
            os.makedirs(f"{folder}/{split}/{kind}", exist_ok=True)
            for i in range(count):
                width, height = sizes[i % len(sizes)]
                extension = formats[i % len(formats)]
                image = draw(kind, width, height)
                path = f"{folder}/{split}/{kind}/{kind}-{i:02d}.{extension}"
                if extension == "png":
                    image.save(path)
                else:
                    image.save(path, quality=90)

write("small", [(32, 32)], {"train": 8, "val": 3}, ["jpg"])
write("large", [(120, 90), (90, 120), (75, 100), (64, 200)], {"train": 4, "val": 2}, ["jpg", "png", "JPEG"])
for split in ["train", "val"]:
    with open(f"large/{split}/circle/README.txt", "w") as f:
        f.write("not an image: the index skips and counts it\n")
