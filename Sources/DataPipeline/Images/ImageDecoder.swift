import CSPNG
import CTurboJPEG
import CZlib

/// Decodes JPEG and PNG files to 8-bit RGB with the pixels that torchvision's default loader,
/// `PIL.Image.open(f).convert("RGB")` with Pillow 13, gives for them.
///
/// The format is told by the first bytes (JPEG `FF D8 FF`, the PNG signature), never by the
/// file name.
///
/// **JPEG** (libjpeg-turbo's TurboJPEG API): the accurate integer inverse DCT and libjpeg's
/// default ("fancy") chroma upsampling, as Pillow decodes, so the pixels are the same on every
/// CPU. Greyscale images are replicated into R, G and B. Four-channel (CMYK and YCCK) JPEGs are
/// read as Pillow reads them, as Adobe-inverted CMYK whether or not they carry an Adobe marker,
/// and converted with Pillow's `cmyk2rgb`: with the stored (inverted) values `c′` and `k′`,
/// `R = k′ − round(k′ × (255 − c′) / 255)` (Pillow's `MULDIV255` rounding), and likewise G from
/// `m′` and B from `y′`. libjpeg reports damaged data as warnings; every warning is an error here
/// except "N extraneous bytes before marker", which some real files have (stray bytes between
/// segments or before the end marker: the image still decodes whole). libjpeg keeps the first
/// warning's text only, so a warning after that one goes unnoticed.
///
/// **PNG** (libspng), every colour type and bit depth, interlaced or not. As Pillow's
/// `convert("RGB")` does: grey is replicated (1-, 2- and 4-bit grey scaled by 255, 85 and 17);
/// alpha, a `tRNS` chunk and gamma/colour chunks are ignored (alpha is dropped, not composited);
/// palette indices without a palette entry are black; 16-bit RGB, RGBA and grey+alpha samples
/// keep their high byte; **16-bit grey is clipped, not scaled**: Pillow opens it as `I;16` and
/// converts each value `v` to `min(v, 255)`, so most 16-bit grey photographs come out nearly
/// white (as they do in torchvision). The CRCs of all chunks are checked, the image data's
/// included (where Pillow, and libspng alone, let a bad CRC of the last `IDAT` chunk pass).
///
/// One decoder per loader thread: it holds a TurboJPEG handle and scratch storage reused from one
/// image to the next, and must not be used from two threads at once. After the largest image
/// has been seen, decoding allocates nothing on the Swift side (libjpeg-turbo and libspng still
/// use their own short-lived working memory).
public final class ImageDecoder {
    /// The largest image decoded, in pixels (2^28, e.g. 16 384 × 16 384): a header announcing
    /// more is refused before anything is allocated.
    public static let maximumPixelCount = 1 << 28

    private let handle: tjhandle
    /// CMYK rows of a four-channel JPEG, or the samples of a PNG that is not 8-bit RGB.
    private var scratch: [UInt8] = []
    /// A palette PNG's palette as RGB triples, 256 of them.
    private var paletteTable: [UInt8] = []

    /// A decoder with its own TurboJPEG handle.
    public init() {
        guard let handle = tjInitDecompress() else { preconditionFailure("tjInitDecompress failed: out of memory") }
        self.handle = handle
    }

    deinit {
        tjDestroy(handle)
    }

    /// The decoding libraries and their versions, for `pskd info`: libjpeg-turbo's from the
    /// headers pskd was built with (TurboJPEG 2 has no run-time version query), libspng's from
    /// the library loaded at run time.
    public static var libraryVersions: [(name: String, version: String)] {
        let number = Int(LIBJPEG_TURBO_VERSION_NUMBER)
        let turbo = "\(number / 1_000_000).\(number / 1000 % 1000).\(number % 1000)"
        return [("libjpeg-turbo", turbo), ("libspng", String(cString: spng_version_string()))]
    }

    /// Decodes one JPEG or PNG file's bytes into `image`, reusing its storage (it grows only when
    /// the image is larger than any before) and setting its width and height.
    ///
    /// - Parameters:
    ///   - bytes: the whole encoded file.
    ///   - image: receives the pixels, `[height, width, 3]` row-major.
    ///   - source: where the bytes come from (a path, or a shard and member), for messages.
    /// - Throws: `DataError` naming `source`: `.truncated` for an empty file or one that ends
    ///   early, `.badMagic` for bytes that are neither JPEG nor PNG (the message says what they
    ///   look like), `.undecodableImage` for damaged data, a bad CRC, an unsupported variant
    ///   (12-bit or arithmetic-coded JPEG…) or a size over `maximumPixelCount`. On error `image`
    ///   holds no valid picture.
    public func decode(_ bytes: UnsafeRawBufferPointer, into image: inout RGBImage, source: String) throws(DataError) {
        switch try ImageFormat.detect(bytes, source: source) {
        case .jpeg: try decodeJPEG(bytes, into: &image, source: source)
        case .png: try decodePNG(bytes, into: &image, source: source)
        }
    }

    /// The width and height that a JPEG's frame header or a PNG's `IHDR` announces, read without
    /// decoding (and without checking the rest of the file).
    ///
    /// - Throws: `DataError` naming `source`, as `decode` would for the same header: not an
    ///   image, a header cut short or damaged, a zero or too large (over `maximumPixelCount`) size.
    public static func size(of bytes: UnsafeRawBufferPointer, source: String) throws(DataError) -> (width: Int, height: Int) {
        let format = try ImageFormat.detect(bytes, source: source)
        let size = format == .jpeg ? try jpegFrameSize(bytes, source: source) : try pngHeader(bytes, source: source).size
        try checkSize(size, format: format, source: source)
        return size
    }

    // MARK: JPEG

    private func decodeJPEG(_ bytes: UnsafeRawBufferPointer, into image: inout RGBImage, source: String) throws(DataError) {
        let base = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let length = UInt(bytes.count)
        var (width, height, subsampling, colorspace): (Int32, Int32, Int32, Int32) = (0, 0, 0, 0)
        if tjDecompressHeader3(handle, base, length, &width, &height, &subsampling, &colorspace) != 0 {
            try checkWarning(stage: "header", source: source)
        }
        let size = (width: Int(width), height: Int(height))
        if width == 0 && height == 0 {  // TurboJPEG returns no size for a stream of tables only
            throw DataError(
                .truncated, file: source, expected: "a JPEG frame header (SOF marker) giving the image size",
                found: "none in the \(bytes.count) bytes: the file is cut short, or holds tables only",
                remedy: DataError.replaceDamagedImage)
        }
        try Self.checkSize(size, format: .jpeg, source: source)
        // Accurate IDCT; default (fancy) upsampling; at most 500 scans, so that a crafted
        // progressive file cannot take minutes.
        let flags = TJFLAG_ACCURATEDCT | TJFLAG_LIMITSCANS
        let pixelCount = size.width * size.height
        Self.reserve(&image.pixels, pixelCount * 3)
        (image.width, image.height) = size
        if colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue) {
            Self.reserve(&scratch, pixelCount * 4)
            let status = scratch.withUnsafeMutableBufferPointer {
                tjDecompress2(handle, base, length, $0.baseAddress, width, width * 4, height, Int32(TJPF_CMYK.rawValue), flags)
            }
            if status != 0 { try checkWarning(stage: "data", source: source) }
            Self.convertAdobeCMYK(scratch, pixelCount: pixelCount, into: &image.pixels)
        } else {
            let status = image.pixels.withUnsafeMutableBufferPointer {
                tjDecompress2(handle, base, length, $0.baseAddress, width, width * 3, height, Int32(TJPF_RGB.rawValue), flags)
            }
            if status != 0 { try checkWarning(stage: "data", source: source) }
        }
    }

    /// After a TurboJPEG call failed: returns for the benign "extraneous bytes" warning, throws
    /// for every other warning or error.
    private func checkWarning(stage: String, source: String) throws(DataError) {
        let message = String(cString: tjGetErrorStr2(handle))
        if tjGetErrorCode(handle) == Int32(TJERR_WARNING.rawValue) && message.contains("extraneous bytes before marker") {
            return
        }
        let truncated = message.contains("Premature end")
        throw DataError(
            truncated ? .truncated : .undecodableImage, file: source,
            expected: stage == "header"
                ? "a readable JPEG header (8-bit baseline or progressive, Huffman-coded)" : "intact JPEG image data",
            found: "libjpeg-turbo: \(message)\(truncated ? " (the file is cut short)" : "")",
            remedy: DataError.replaceDamagedImage)
    }

    /// Pillow's reading of a four-channel JPEG: the stored values are Adobe-inverted CMYK
    /// (`CMYK;I`), converted by `cmyk2rgb`.
    private static func convertAdobeCMYK(_ cmyk: [UInt8], pixelCount: Int, into rgb: inout [UInt8]) {
        cmyk.withUnsafeBufferPointer { input in
            rgb.withUnsafeMutableBufferPointer { output in
                for pixel in 0..<pixelCount {
                    let blackRemaining = Int(input[pixel * 4 + 3])  // 255 − K
                    for channel in 0..<3 {
                        let ink = 255 - Int(input[pixel * 4 + channel])  // C, M or Y
                        let product = ink * blackRemaining + 128
                        output[pixel * 3 + channel] = UInt8(max(0, blackRemaining - (((product >> 8) + product) >> 8)))
                    }
                }
            }
        }
    }

    /// The frame size from a JPEG's first SOFn marker, walking the marker segments before it.
    private static func jpegFrameSize(_ bytes: UnsafeRawBufferPointer, source: String) throws(DataError) -> (width: Int, height: Int) {
        var position = 2
        while position < bytes.count {
            // libjpeg skips stray bytes between segments ("extraneous bytes"); so does this.
            guard bytes[position] == 0xFF else {
                position += 1
                continue
            }
            while position < bytes.count && bytes[position] == 0xFF { position += 1 }
            guard position < bytes.count else { break }
            let marker = bytes[position]
            position += 1
            if marker == 0x01 || (0xD0...0xD8).contains(marker) { continue }  // no length field
            if marker == 0xD9 || marker == 0xDA {
                throw DataError(
                    .undecodableImage, file: source, expected: "a JPEG frame header (SOF marker) before the image data",
                    found: "marker FF \(hex(bytes, from: position - 1, count: 1)) at byte \(position - 1) first",
                    remedy: DataError.replaceDamagedImage)
            }
            guard position + 2 <= bytes.count else { break }
            let segmentLength = Int(bytes[position]) << 8 | Int(bytes[position + 1])
            let isFrame = (0xC0...0xCF).contains(marker) && marker != 0xC4 && marker != 0xC8 && marker != 0xCC
            if isFrame {
                guard position + 7 <= bytes.count else { break }
                let height = Int(bytes[position + 3]) << 8 | Int(bytes[position + 4])
                let width = Int(bytes[position + 5]) << 8 | Int(bytes[position + 6])
                return (width, height)
            }
            position += max(segmentLength, 2)
        }
        throw DataError(
            .truncated, file: source, expected: "a JPEG frame header (SOF marker) giving the image size",
            found: "the file ends after \(bytes.count) bytes without one", remedy: DataError.replaceDamagedImage)
    }

    // MARK: PNG

    private struct PNGHeader {
        var size: (width: Int, height: Int)
        var bitDepth: Int
        var colorType: Int
    }

    /// The `IHDR` fields that the size check and the conversion need (libspng checks the rest).
    private static func pngHeader(_ bytes: UnsafeRawBufferPointer, source: String) throws(DataError) -> PNGHeader {
        // Signature (8), IHDR length (4) and type (4), then width, height, depth, colour type.
        guard bytes.count >= 26 else {
            throw DataError(
                .truncated, file: source, expected: "a PNG header (IHDR chunk, 33 bytes with the signature)",
                found: "a file of \(bytes.count) bytes", remedy: DataError.replaceDamagedImage)
        }
        guard bytes[12] == 0x49, bytes[13] == 0x48, bytes[14] == 0x44, bytes[15] == 0x52 else {
            throw DataError(
                .undecodableImage, file: source, expected: "the IHDR chunk right after the PNG signature",
                found: "chunk type bytes \(hex(bytes, from: 12, count: 4))", remedy: DataError.replaceDamagedImage)
        }
        func word(_ offset: Int) -> Int { (0..<4).reduce(0) { $0 << 8 | Int(bytes[offset + $1]) } }
        return PNGHeader(size: (word(16), word(20)), bitDepth: Int(bytes[24]), colorType: Int(bytes[25]))
    }

    /// Walks the chunks from the signature to `IEND`, checking that each is whole and that its
    /// CRC matches. libspng does not check the last `IDAT` chunk's CRC (nor does Pillow).
    private static func checkChunks(_ bytes: UnsafeRawBufferPointer, source: String) throws(DataError) {
        let base = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        func word(_ offset: Int) -> UInt32 { (0..<4).reduce(0) { $0 << 8 | UInt32(bytes[offset + $1]) } }
        var position = 8
        while true {
            guard position + 12 <= bytes.count, position + 12 + Int(word(position)) <= bytes.count else {
                throw DataError(
                    .truncated, file: source, expected: "PNG chunks up to the IEND chunk",
                    found: "the file ends at byte \(bytes.count), inside or before the chunk at byte \(position) (the file is cut short)",
                    remedy: DataError.replaceDamagedImage)
            }
            let length = Int(word(position))
            let stored = word(position + 8 + length)
            let computed = UInt32(crc32(0, base + position + 4, UInt32(length + 4)))
            let type = String(decoding: bytes[position + 4..<position + 8], as: UTF8.self)
            guard stored == computed else {
                throw DataError(
                    .undecodableImage, file: source, expected: "PNG chunks whose CRCs match their data",
                    found: "chunk \(type) at byte \(position) stores CRC \(hex(bytes, from: position + 8 + length, count: 4)), "
                        + "its data's is \(withUnsafeBytes(of: computed.bigEndian) { hex($0, from: 0, count: 4) }) (the file is damaged)",
                    remedy: DataError.replaceDamagedImage)
            }
            if type == "IEND" { return }
            position += length + 12
        }
    }

    private func decodePNG(_ bytes: UnsafeRawBufferPointer, into image: inout RGBImage, source: String) throws(DataError) {
        let header = try Self.pngHeader(bytes, source: source)
        try Self.checkSize(header.size, format: .png, source: source)
        try Self.checkChunks(bytes, source: source)
        guard let context = spng_ctx_new(0) else { preconditionFailure("spng_ctx_new failed: out of memory") }
        defer { spng_ctx_free(context) }
        let format = Int32(SPNG_FMT_PNG.rawValue)
        var status = spng_set_crc_action(context, Int32(SPNG_CRC_ERROR.rawValue), Int32(SPNG_CRC_ERROR.rawValue))
        // Text, ICC and other ancillary chunks: 16 MiB each and in all, enough for any real file.
        if status == 0 { status = spng_set_chunk_limits(context, 1 << 24, 1 << 24) }
        if status == 0 { status = spng_set_png_buffer(context, bytes.baseAddress, bytes.count) }
        var ihdr = spng_ihdr()
        if status == 0 { status = spng_get_ihdr(context, &ihdr) }
        var length = 0
        if status == 0 { status = spng_decoded_image_size(context, format, &length) }
        guard status == 0 else { throw Self.pngError(status, source: source) }

        let pixelCount = header.size.width * header.size.height
        Self.reserve(&image.pixels, pixelCount * 3)
        (image.width, image.height) = header.size
        if header.colorType == 2 && header.bitDepth == 8 {
            // 8-bit RGB: libspng writes the rows straight into the image.
            status = image.pixels.withUnsafeMutableBufferPointer { spng_decode_image(context, $0.baseAddress, length, format, 0) }
            guard status == 0 else { throw Self.pngError(status, source: source) }
            return
        }
        Self.reserve(&scratch, length)
        status = scratch.withUnsafeMutableBufferPointer { spng_decode_image(context, $0.baseAddress, length, format, 0) }
        var palette = spng_plte()
        if status == 0 && header.colorType == 3 { status = spng_get_plte(context, &palette) }
        guard status == 0 else { throw Self.pngError(status, source: source) }
        if header.colorType == 3 {
            // Palette entries as RGB triples; indices without an entry stay black, as in Pillow.
            Self.reserve(&paletteTable, 256 * 3)
            paletteTable.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
            withUnsafeBytes(of: palette.entries) { entries in
                for index in 0..<min(Int(palette.n_entries), 256) {
                    for channel in 0..<3 { paletteTable[index * 3 + channel] = entries[index * 4 + channel] }
                }
            }
        }
        Self.convertPNG(scratch, header: header, palette: paletteTable, into: &image.pixels)
    }

    /// Pillow's `convert("RGB")` of the PNG samples libspng wrote (`SPNG_FMT_PNG`: rows packed as
    /// in the file, unfiltered and deinterlaced, 16-bit samples in host byte order).
    private static func convertPNG(_ samples: [UInt8], header: PNGHeader, palette table: [UInt8], into pixels: inout [UInt8]) {
        let (width, height) = header.size
        let depth = header.bitDepth
        let channels: Int
        switch header.colorType {
        case 2: channels = 3
        case 4: channels = 2
        case 6: channels = 4
        default: channels = 1  // grey, palette
        }
        let rowBytes = (width * channels * depth + 7) / 8
        samples.withUnsafeBytes { input in
            pixels.withUnsafeMutableBufferPointer { output in
                for y in 0..<height {
                    let row = y * rowBytes
                    var out = y * width * 3
                    switch (header.colorType, depth) {
                    case (0, 16):  // I;16 → RGB clips
                        for x in 0..<width {
                            let value = UInt8(min(255, input.loadUnaligned(fromByteOffset: row + x * 2, as: UInt16.self)))
                            (output[out], output[out + 1], output[out + 2]) = (value, value, value)
                            out += 3
                        }
                    case (0, _), (3, _):
                        for x in 0..<width {
                            let sample: Int
                            if depth == 8 {
                                sample = Int(input[row + x])
                            } else {
                                let bit = x * depth
                                sample = Int(input[row + bit / 8] >> (8 - depth - bit % 8)) & ((1 << depth) - 1)
                            }
                            if header.colorType == 3 {
                                (output[out], output[out + 1], output[out + 2]) = (
                                    table[sample * 3], table[sample * 3 + 1], table[sample * 3 + 2]
                                )
                            } else {
                                let value = UInt8(sample * (255 / ((1 << depth) - 1)))
                                (output[out], output[out + 1], output[out + 2]) = (value, value, value)
                            }
                            out += 3
                        }
                    case (4, _):  // grey + alpha: grey (its high byte at 16 bits)
                        for x in 0..<width {
                            let value = depth == 8 ? input[row + x * 2] : highByte(input, row + x * 4)
                            (output[out], output[out + 1], output[out + 2]) = (value, value, value)
                            out += 3
                        }
                    default:  // RGB at 16 bits, RGBA at 8 or 16: the colour's (high) bytes
                        let sampleBytes = depth / 8
                        for x in 0..<width {
                            let pixel = row + x * channels * sampleBytes
                            for channel in 0..<3 {
                                let offset = pixel + channel * sampleBytes
                                output[out + channel] = sampleBytes == 1 ? input[offset] : highByte(input, offset)
                            }
                            out += 3
                        }
                    }
                }
            }
        }
    }

    /// The high byte of a host-order 16-bit sample.
    @inline(__always)
    private static func highByte(_ buffer: UnsafeRawBufferPointer, _ offset: Int) -> UInt8 {
        UInt8(buffer.loadUnaligned(fromByteOffset: offset, as: UInt16.self) >> 8)
    }

    private static func pngError(_ status: Int32, source: String) -> DataError {
        let message = String(cString: spng_strerror(status))
        let truncated = [SPNG_IO_EOF.rawValue, SPNG_EOF.rawValue, SPNG_EIDAT_TOO_SHORT.rawValue].contains(status)
        let crc = status == SPNG_ECHUNK_CRC.rawValue
        return DataError(
            truncated ? .truncated : .undecodableImage, file: source,
            expected: crc ? "PNG chunks whose CRCs match their data" : "an intact PNG image",
            found: "libspng: \(message)\(truncated ? " (the file is cut short)" : crc ? " (the file is damaged)" : "")",
            remedy: DataError.replaceDamagedImage)
    }

    // MARK: Shared

    /// Grows `storage` to at least `count` bytes; never shrinks it.
    @inline(__always)
    private static func reserve(_ storage: inout [UInt8], _ count: Int) {
        if storage.count < count {
            storage = [UInt8](repeating: 0, count: count)
        }
    }

    private static func checkSize(_ size: (width: Int, height: Int), format: ImageFormat, source: String) throws(DataError) {
        guard size.width > 0, size.height > 0, size.width * size.height <= maximumPixelCount else {
            throw DataError(
                .undecodableImage, file: source,
                expected: "a \(format == .jpeg ? "JPEG" : "PNG") image of 1 to \(maximumPixelCount) pixels (2^28)",
                found: "a header announcing \(size.width)×\(size.height) pixels",
                remedy: "the header is damaged or the image is not a training image: replace or remove the file")
        }
    }
}

/// The encoded formats `ImageDecoder` reads, told by their first bytes.
enum ImageFormat: Equatable {
    case jpeg, png

    /// The format of `bytes`, or an error saying what they look like.
    static func detect(_ bytes: UnsafeRawBufferPointer, source: String) throws(DataError) -> ImageFormat {
        if bytes.count >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF { return .jpeg }
        // The PNG signature, 89 50 4E 47 0D 0A 1A 0A, read as one big-endian word (no array per call).
        if bytes.count >= 8 && UInt64(bigEndian: bytes.loadUnaligned(as: UInt64.self)) == 0x8950_4E47_0D0A_1A0A { return .png }
        let expected = "a JPEG (bytes FF D8 FF) or PNG (89 50 4E 47 0D 0A 1A 0A) image"
        guard !bytes.isEmpty else {
            throw DataError(
                .truncated, file: source, expected: expected, found: "an empty file (0 bytes)",
                remedy: "the file was not written or copied whole: replace it with an intact copy")
        }
        throw DataError(.badMagic, file: source, expected: expected, found: describe(bytes), remedy: DataError.replaceDamagedImage)
    }

    /// What unknown bytes look like: another image format, text, or just their first bytes.
    private static func describe(_ bytes: UnsafeRawBufferPointer) -> String {
        let head = "first bytes \(hex(bytes, from: 0, count: 8))"
        func starts(_ prefix: String) -> Bool { bytes.starts(with: prefix.utf8) }
        if starts("GIF87a") || starts("GIF89a") { return "a GIF image (\(head))" }
        if starts("RIFF") && bytes.count >= 12 && bytes[8..<12].elementsEqual("WEBP".utf8) { return "a WebP image (\(head))" }
        if starts("BM") { return "perhaps a BMP image (\(head))" }
        if starts("II*\u{0}") || starts("MM\u{0}*") { return "a TIFF image (\(head))" }
        if bytes.starts(with: [0x1F, 0x8B]) { return "gzip-compressed data (\(head))" }
        if bytes.count >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 { return "a JPEG start marker without a segment after it (\(head))" }
        let text = bytes.prefix(32)
        let printable = text.allSatisfy { (0x20..<0x7F).contains($0) || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }
        if printable {
            let quoted = String(decoding: text, as: UTF8.self).replacingNewlines()
            return
                "text, not an image: \"\(quoted)\(bytes.count > 32 ? "…" : "")\" (\(head)), perhaps an HTML error page or a placeholder saved under an image name"
        }
        return head
    }
}

extension String {
    fileprivate func replacingNewlines() -> String {
        String(unicodeScalars.map { $0 == "\n" || $0 == "\r" || $0 == "\t" ? " " : Character($0) })
    }
}

/// `count` bytes from `start` as hex pairs (`3C 21 44 4F`), fewer if the buffer ends.
private func hex(_ bytes: UnsafeRawBufferPointer, from start: Int, count: Int) -> String {
    let digits = Array("0123456789ABCDEF")
    return bytes[min(start, bytes.count)..<min(start + count, bytes.count)].map { "\(digits[Int($0 >> 4)])\(digits[Int($0 & 15)])" }
        .joined(separator: " ")
}

extension DataError {
    /// The advice for a damaged image file; a loader may replace it with a specific one.
    static let replaceDamagedImage = "replace the file with an intact copy (download or extract it again), or remove it from the data set"
}
