import TestSupport
import XCTest

@testable import Optimizers

final class ScheduleTests: XCTestCase {
    func testConstant() {
        XCTAssertEqual(ConstantSchedule(base: 0.3).learningRate(epoch: 7, step: 3, stepsPerEpoch: 10), 0.3)
    }

    func testStepScheduleDecaysAtEachMilestoneLikeMultiStepLR() {
        let schedule = StepSchedule(base: 0.1, milestones: [225, 150])  // unsorted on purpose
        let rate = { (epoch: Int) in schedule.learningRate(epoch: epoch, step: 5, stepsPerEpoch: 391) }
        assertClose(rate(0), 0.1)
        assertClose(rate(149), 0.1)
        assertClose(rate(150), 0.01, absolute: 1e-15)
        assertClose(rate(224), 0.01, absolute: 1e-15)
        assertClose(rate(225), 0.001, absolute: 1e-15)
        assertClose(rate(299), 0.001, absolute: 1e-15)
        let custom = StepSchedule(base: 1, milestones: [2], gamma: 0.5)
        XCTAssertEqual(custom.learningRate(epoch: 1, step: 0, stepsPerEpoch: 1), 1)
        XCTAssertEqual(custom.learningRate(epoch: 2, step: 0, stepsPerEpoch: 1), 0.5)
    }

    func testCosineEndpointsMidpointAndMonotonicity() {
        let schedule = CosineSchedule(base: 0.1, epochs: 10, minimum: 0.001)
        assertClose(schedule.learningRate(epoch: 0, step: 0, stepsPerEpoch: 100), 0.1)
        assertClose(schedule.learningRate(epoch: 5, step: 0, stepsPerEpoch: 100), (0.1 + 0.001) / 2)
        assertClose(schedule.learningRate(epoch: 10, step: 0, stepsPerEpoch: 100), 0.001)
        assertClose(schedule.learningRate(epoch: 12, step: 0, stepsPerEpoch: 100), 0.001, "clamped after the end")
        // A quarter of the way: min + (base − min)(1 + cos(π/4))/2, reached mid-epoch per step.
        assertClose(
            schedule.learningRate(epoch: 2, step: 50, stepsPerEpoch: 100),
            0.001 + 0.099 * (1 + cos(Double.pi / 4)) / 2, absolute: 1e-15)
        var previous = Double.infinity
        for epoch in 0..<10 {
            for step in stride(from: 0, to: 100, by: 10) {
                let rate = schedule.learningRate(epoch: epoch, step: step, stepsPerEpoch: 100)
                XCTAssertLessThan(rate, previous + 1e-15)
                previous = rate
            }
        }
        XCTAssertEqual(CosineSchedule(base: 1, epochs: 4).learningRate(epoch: 4, step: 0, stepsPerEpoch: 3), 0, accuracy: 1e-15)
    }

    func testWarmupRampsLinearlyPerStepThenFollowsTheWrappedSchedule() {
        let schedule = WarmupSchedule(ConstantSchedule(base: 0.4), warmupEpochs: 2)
        let stepsPerEpoch = 5  // 10 warm-up steps
        var rates: [Double] = []
        for epoch in 0..<3 {
            for step in 0..<stepsPerEpoch {
                rates.append(schedule.learningRate(epoch: epoch, step: step, stepsPerEpoch: stepsPerEpoch))
            }
        }
        assertClose(Array(rates[0..<10]), (1...10).map { 0.4 * Double($0) / 10 }, absolute: 1e-15, relative: 1e-12)
        assertClose(Array(rates[10...]), [Double](repeating: 0.4, count: 5))
        // Warm-up scales whatever the wrapped schedule gives at that step.
        let stepped = WarmupSchedule(StepSchedule(base: 1, milestones: [1]), warmupEpochs: 2)
        assertClose(stepped.learningRate(epoch: 1, step: 0, stepsPerEpoch: 5), 0.1 * 6 / 10, absolute: 1e-15)
        XCTAssertEqual(
            WarmupSchedule(ConstantSchedule(base: 0.4), warmupEpochs: 0)
                .learningRate(epoch: 0, step: 0, stepsPerEpoch: 5), 0.4)
    }
}
