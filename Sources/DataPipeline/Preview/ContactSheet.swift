import Tensors

/// A grid of a batch's images as the model sees them (after augmentation, normalisation undone),
/// each captioned with its class: what `pskd data preview` writes.
public enum ContactSheet {
    /// The sheet of `batch`'s rows (at most `limit`), whose inputs were normalised with `mean`
    /// and `std` (one per channel); a caption under each image reads "CLASS-INDEX CLASS-NAME".
    /// Images smaller than 96 pixels are enlarged by a whole factor so they can be seen.
    public static func render(
        _ batch: Batch, classNames: [String], mean: [Float], std: [Float], limit: Int = 64
    ) -> RGBImage {
        let (height, width, channels) = (batch.inputs.shape[1], batch.inputs.shape[2], batch.inputs.shape[3])
        let count = min(batch.count, limit)
        let zoom = max(1, 96 / max(height, width))
        let (tileWidth, tileHeight) = (width * zoom, height * zoom)
        let captionHeight = TinyFont.glyphHeight * TinyFont.scale + 6
        let columns = Int(Double(count).squareRoot().rounded(.up))
        let rows = (count + columns - 1) / columns
        let gap = 4
        let (sheetWidth, sheetHeight) = (columns * (tileWidth + gap) + gap, rows * (tileHeight + captionHeight + gap) + gap)
        var sheet = RGBImage(
            width: sheetWidth, height: sheetHeight, pixels: [UInt8](repeating: 255, count: sheetWidth * sheetHeight * 3))
        for row in 0..<count {
            let (x0, y0) = (gap + (row % columns) * (tileWidth + gap), gap + (row / columns) * (tileHeight + captionHeight + gap))
            let sample = batch.inputs.pointer + row * height * width * channels
            for y in 0..<tileHeight {
                for x in 0..<tileWidth {
                    let source = sample + ((y / zoom) * width + x / zoom) * channels
                    let target = ((y0 + y) * sheet.width + x0 + x) * 3
                    for c in 0..<3 {
                        let channel = min(c, channels - 1)
                        let value = (source[channel] * std[channel] + mean[channel]) * 255
                        sheet.pixels[target + c] = UInt8(max(0, min(255, value.rounded())))
                    }
                }
            }
            let label = Int(batch.labels[row])
            let name = label < classNames.count ? classNames[label] : "?"
            TinyFont.draw("\(label) \(name)", into: &sheet, x: x0, y: y0 + tileHeight + 3, maxWidth: tileWidth)
        }
        return sheet
    }
}

/// A 3 × 5 pixel font for captions: letters (either case), digits and a little punctuation; any
/// other character is drawn as "?".
enum TinyFont {
    static let glyphWidth = 3, glyphHeight = 5
    /// Each font pixel is drawn as `scale × scale` pixels.
    static let scale = 2

    /// Draws `text` in black with its top-left at (x, y), cut to `maxWidth` pixels.
    static func draw(_ text: String, into image: inout RGBImage, x: Int, y: Int, maxWidth: Int) {
        let advance = (glyphWidth + 1) * scale
        for (position, character) in text.uppercased().enumerated() {
            let left = x + position * advance
            guard left + glyphWidth * scale <= x + maxWidth else { return }
            let rows = glyphs[character] ?? glyphs["?"]!
            for (gy, row) in rows.enumerated() {
                for (gx, bit) in row.enumerated() where bit == "#" {
                    for dy in 0..<scale {
                        for dx in 0..<scale {
                            let (px, py) = (left + gx * scale + dx, y + gy * scale + dy)
                            guard px < image.width, py < image.height else { continue }
                            let offset = (py * image.width + px) * 3
                            image.pixels[offset] = 0
                            image.pixels[offset + 1] = 0
                            image.pixels[offset + 2] = 0
                        }
                    }
                }
            }
        }
    }

    /// The glyphs, five rows of three pixels each.
    static let glyphs: [Character: [String]] = {
        let table: [(Character, String)] = [
            ("A", ".#. #.# ### #.# #.#"), ("B", "##. #.# ##. #.# ##."), ("C", ".## #.. #.. #.. .##"),
            ("D", "##. #.# #.# #.# ##."), ("E", "### #.. ##. #.. ###"), ("F", "### #.. ##. #.. #.."),
            ("G", ".## #.. #.# #.# .##"), ("H", "#.# #.# ### #.# #.#"), ("I", "### .#. .#. .#. ###"),
            ("J", "..# ..# ..# #.# .#."), ("K", "#.# #.# ##. #.# #.#"), ("L", "#.. #.. #.. #.. ###"),
            ("M", "#.# ### ### #.# #.#"), ("N", "##. #.# #.# #.# #.#"), ("O", ".#. #.# #.# #.# .#."),
            ("P", "##. #.# ##. #.. #.."), ("Q", ".#. #.# #.# ##. .##"), ("R", "##. #.# ##. #.# #.#"),
            ("S", ".## #.. .#. ..# ##."), ("T", "### .#. .#. .#. .#."), ("U", "#.# #.# #.# #.# ###"),
            ("V", "#.# #.# #.# #.# .#."), ("W", "#.# #.# ### ### #.#"), ("X", "#.# #.# .#. #.# #.#"),
            ("Y", "#.# #.# .#. .#. .#."), ("Z", "### ..# .#. #.. ###"), ("0", "### #.# #.# #.# ###"),
            ("1", ".#. ##. .#. .#. ###"), ("2", "##. ..# .#. #.. ###"), ("3", "##. ..# .#. ..# ##."),
            ("4", "#.# #.# ### ..# ..#"), ("5", "### #.. ##. ..# ##."), ("6", ".## #.. ### #.# ###"),
            ("7", "### ..# .#. .#. .#."), ("8", "### #.# ### #.# ###"), ("9", "### #.# ### ..# ##."),
            ("-", "... ... ### ... ..."), ("_", "... ... ... ... ###"), (".", "... ... ... ... .#."),
            (":", "... .#. ... .#. ..."), (" ", "... ... ... ... ..."), ("?", "##. ..# .#. ... .#."),
        ]
        return Dictionary(uniqueKeysWithValues: table.map { ($0.0, $0.1.split(separator: " ").map(String.init)) })
    }()
}
