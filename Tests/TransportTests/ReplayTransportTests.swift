import Foundation
import Pipeline
import PipelineTesting
import Testing
@testable import Transport

@Suite struct ReplayTransportTests {
    func write(_ text: String) throws -> String {
        let file = try ExternalTool.temporaryDirectory().appendingPathComponent("github.jsonl").path
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    @Test func aCorruptRecordingIsRefusedNamingTheFileAndLine() async throws {
        let file = try write("""
        {"request": {"method": "GET", "path": "/ok"}, "response": {"status": 200}}
        {"request": {"method": "GET", "path": "/x"}, "response": {"status": 200, "body": "
        """)
        do {
            _ = try await ReplayTransport.open(recording: file)
            Issue.record("accepted a truncated recording")
        } catch {
            #expect("\(error)".hasPrefix("\(file):2: recording line is not valid JSON"), "\(error)")
        }
    }

    @Test func aRecordingWithoutStatusIsRefusedNamingTheLine() async throws {
        let file = try write(#"{"request": {"method": "GET", "path": "/x"}, "response": {"body": ""}}"#)
        do {
            _ = try await ReplayTransport.open(recording: file)
            Issue.record("accepted an answer without status")
        } catch {
            #expect("\(error)".contains("\(file):1: response needs a 'status'"), "\(error)")
        }
    }

    @Test func aMissingRecordingIsNamed() async throws {
        await #expect(throws: PipelineError(.fixture, "/nonexistent/github.jsonl: recording not found")) {
            _ = try await ReplayTransport.open(recording: "/nonexistent/github.jsonl")
        }
    }

    @Test func queryOrderDoesNotMatterAndAnswersComeInTurn() async throws {
        let file = try write("""
        {"request": {"method": "GET", "path": "/x?b=2&a=1"}, "response": {"status": 503}}

        {"request": {"method": "GET", "path": "/x?b=2&a=1"}, "response": {"status": 200, "body": "ok"}}
        """)
        let transport = try await ReplayTransport.open(recording: file)
        let request = HTTPRequest(url: URL(string: "https://api.github.com/x?a=1&b=2")!)
        #expect(try await transport.send(request).status == 503)
        #expect(try await transport.send(request).status == 200)
        #expect(try await transport.send(request).body == Data("ok".utf8))
    }

    @Test func anUnrecordedRequestIsAnError() async throws {
        let transport = try await ReplayTransport.open(recording: try write(""))
        await #expect(throws: PipelineError.self) {
            _ = try await transport.send(HTTPRequest(url: URL(string: "https://api.github.com/nope")!))
        }
    }

    /// The index keeps where each answer is, not the answer: a recording far larger than the
    /// pieces it is read in still answers every request whole, byte for byte.
    @Test func largeAnswersAreReadFromTheFileWhenAsked() async throws {
        let big = String(repeating: "x", count: 3 << 20)
        var lines: [String] = []
        for n in 0..<4 {
            lines.append(#"{"request": {"method": "GET", "path": "/big/\#(n)"}, "response": {"status": 200, "body": "\#(n)\#(big)"}}"#)
        }
        let transport = try await ReplayTransport.open(recording: try write(lines.joined(separator: "\n") + "\n"))
        for n in [3, 0, 2, 1] {
            let body = try await transport.send(HTTPRequest(url: URL(string: "https://h/big/\(n)")!)).body
            #expect(body.count == big.utf8.count + 1)
            #expect(body.first == UInt8(ascii: "0") + UInt8(n))
        }
        // Streamed to a file when the request asks for it.
        let destination = try ExternalTool.temporaryDirectory().appendingPathComponent("answer")
        var request = HTTPRequest(url: URL(string: "https://h/big/2")!)
        request.responseFile = destination
        let response = try await transport.send(request)
        #expect(response.body.isEmpty)
        #expect(try Data(contentsOf: destination).count == big.utf8.count + 1)
    }
}
