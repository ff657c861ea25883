import TestSupport
import XCTest

@testable import Tensors

final class TensorTests: XCTestCase {
    func testValuesAreRowMajorAndShapeIsKept() {
        let t = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(t.shape, [2, 3])
        XCTAssertEqual(t.count, 6)
        XCTAssertEqual(t.rank, 2)
        XCTAssertEqual(t[4], 5)
        XCTAssertEqual(t.scalars, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(Tensor(zeros: [3, 0, 2]).count, 0)
        XCTAssertEqual(Tensor.elementCount([]), 1)
        XCTAssertEqual(Tensor(shape: [2, 2], repeating: 2.5).scalars, [2.5, 2.5, 2.5, 2.5])
    }

    func testCopiesShareStorageButCopyIsDeep() {
        let a = Tensor(shape: [4], values: [1, 2, 3, 4])
        let shared = a
        shared[0] = 10
        XCTAssertEqual(a[0], 10, "Tensor has reference semantics for its elements")
        let deep = a.copy()
        deep[1] = 20
        XCTAssertEqual(a[1], 2)
        XCTAssertFalse(deep.sharesStorage(with: a))
        XCTAssertTrue(shared.sharesStorage(with: a))
    }

    func testReshapeIsAViewWithTheNewShape() throws {
        let a = Tensor(shape: [2, 6], values: (0..<12).map(Float.init))
        let b = try a.reshaped([3, 2, 2])
        XCTAssertEqual(b.shape, [3, 2, 2])
        XCTAssertTrue(b.sharesStorage(with: a))
        b[11] = -1
        XCTAssertEqual(a[11], -1)
        XCTAssertEqual(try a.reshaped([12]).scalars, a.scalars)
    }

    func testReshapeToADifferentCountThrowsNamingBothShapes() {
        let a = Tensor(zeros: [2, 6])
        assertShapeError(containing: ["[2, 6]", "[5, 2]"]) { () throws(ShapeError) in try a.reshaped([5, 2]) }
        assertShapeError(containing: ["[2, 6]", "[13]"]) { () throws(ShapeError) in try a.reshaped([13]) }
    }

    func testSliceAndRowsAreViewsAtTheRightOffset() throws {
        let a = Tensor(shape: [4, 3], values: (0..<12).map(Float.init))
        let rows = a.rows(1..<3)
        XCTAssertEqual(rows.shape, [2, 3])
        XCTAssertEqual(rows.scalars, [3, 4, 5, 6, 7, 8])
        rows[0] = 100
        XCTAssertEqual(a[3], 100)
        let slice = a.slice(offset: 5, shape: [2, 2])
        XCTAssertEqual(slice.scalars, [5, 6, 7, 8])
        // A view of a view keeps the accumulated offset.
        let inner = try rows.reshaped([6]).slice(offset: 2, shape: [3])
        XCTAssertEqual(inner.scalars, [5, 6, 7])
        XCTAssertEqual(a.rows(0..<0).count, 0)
    }

    func testFillAndAssign() {
        let a = Tensor(zeros: [2, 2])
        a.fill(3)
        XCTAssertEqual(a.scalars, [3, 3, 3, 3])
        let b = Tensor(shape: [4], values: [1, 2, 3, 4])
        a.assign(b)
        XCTAssertEqual(a.scalars, [1, 2, 3, 4])
        XCTAssertEqual(a.shape, [2, 2])
        XCTAssertFalse(a.sharesStorage(with: b))
    }

    func testStorageIsSixtyFourByteAligned() {
        for count in [1, 3, 17, 1000] {
            XCTAssertEqual(Int(bitPattern: Tensor(zeros: [count]).pointer) % 64, 0)
        }
    }

    func testShapeErrorDescriptionCarriesTheMessage() {
        let error = ShapeError("a [1] b [2]")
        XCTAssertTrue(error.description.contains("a [1] b [2]"))
        XCTAssertEqual(error, ShapeError("a [1] b [2]"))
    }
}
