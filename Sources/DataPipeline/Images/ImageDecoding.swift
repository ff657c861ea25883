/// An 8-bit RGB image, `[height, width, 3]` row-major, in storage that a decoder reuses from one
/// image to the next (so a loader thread allocates only when an image is larger than any before).
public struct RGBImage: Sendable {
    /// The image's size in pixels.
    public var width: Int
    public var height: Int
    /// At least `width × height × 3` bytes; the image is the first `width × height × 3`.
    public var pixels: [UInt8]

    /// An empty image with no storage.
    public init() {
        (width, height, pixels) = (0, 0, [])
    }

    /// An image of `width × height` with the given bytes (`width × height × 3` of them at least).
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count >= width * height * 3, "\(pixels.count) bytes do not hold a \(width)×\(height) RGB image")
        (self.width, self.height, self.pixels) = (width, height, pixels)
    }

    /// Bytes in one row, `width × 3`.
    public var rowBytes: Int { width * 3 }
}
