import Foundation
import Pipeline
import Testing

/// The expression language of declarative checks: parsing, evaluation, and errors that say where.
@Suite struct ExpressionTests {
    let now = Date(timeIntervalSince1970: 1_795_824_000)  // 2026-11-28T00:00:00Z

    func holds(_ text: String, _ json: String) throws -> Bool {
        let value = try JSONProjection([FieldPath("")]).apply(Data(json.utf8))
        return try CheckExpression.parse(text).holds(for: value, now: now)
    }

    @Test(arguments: [
        ("a == 1 and b == 'x'", #"{"a": 1, "b": "x"}"#, true),
        ("a == 1 and not b == 'x'", #"{"a": 1, "b": "x"}"#, false),
        ("a == 2 or b.c >= 3", #"{"a": 1, "b": {"c": 3}}"#, true),
        ("not (a == 1 or a == 2)", #"{"a": 3}"#, true),
        ("missing == null and not exists(missing) and exists(a)", #"{"a": false}"#, true),
        ("all(users, mfa == true)", #"{"users": [{"mfa": true}, {"mfa": true}]}"#, true),
        ("all(users, mfa == true)", #"{"users": [{"mfa": true}, {"mfa": false}]}"#, false),
        ("all(users, mfa == true)", #"{"users": []}"#, true),
        ("any(rules, type == 'deletion')", #"{"rules": [{"type": "pull_request"}, {"type": "deletion"}]}"#, true),
        ("none(rules, type == 'deletion')", #"{"rules": [{"type": "pull_request"}]}"#, true),
        ("count(owners) >= 2 and count(owners) <= 5", #"{"owners": ["a", "b", "c"]}"#, true),
        ("count(users, suspended == true) == 1", #"{"users": [{"suspended": true}, {"suspended": false}]}"#, true),
        ("len(name) > 3 and contains(name, 'cme') and starts_with(lower(name), 'ac') and ends_with(name, 'me')", #"{"name": "Acme"}"#, true),
        ("matches(login, '^svc-[a-z]+$')", #"{"login": "svc-deploy"}"#, true),
        ("contains(tags, 'prod')", #"{"tags": ["dev", "prod"]}"#, true),
        ("age(rotated) <= 90d", #"{"rotated": "2026-10-01T00:00:00Z"}"#, true),
        ("age(rotated) <= 90d", #"{"rotated": "2026-08-01T00:00:00Z"}"#, false),
        ("date(expires) > now + 7d", #"{"expires": "2027-01-01"}"#, true),
        ("date(created) < now - 2w", #"{"created": "2026-11-20T00:00:00Z"}"#, false),
        ("age(last_login) <= 30d", #"{"last_login": null}"#, false),
        ("@ == 'x'", #""x""#, true),
        ("size - 2 == 3", #"{"size": 5}"#, true),
    ])
    func evaluates(_ text: String, _ json: String, _ expected: Bool) throws {
        #expect(try holds(text, json) == expected, "\(text) over \(json)")
    }

    @Test func pathsIncludeThoseInsideListFunctions() throws {
        let expression = try CheckExpression.parse("all(users, mfa.enabled == true) and count(owners) > 1 and name == 'x'")
        #expect(Set(expression.paths) == Set([["users"], ["users", "[]", "mfa", "enabled"], ["owners"], ["name"]]))
    }

    @Test(arguments: [
        ("a == ", 5, "the expression ends where a value was expected"),
        ("a = 1", 2, "'=' is not a comparison: use '=='"),
        ("(a == 1", 7, "expected ')' to close '('"),
        ("a == 'open", 5, "a string that is never closed"),
        ("frobnicate(a)", 0, "unknown function 'frobnicate'"),
        ("all(users)", 0, "all() takes 2 arguments, given 1"),
        ("a == 1 b", 7, "unexpected 'b' after the expression"),
        ("a.. == 1", 0, "'a..' is not a field path"),
        ("12x > 1", 2, "a number runs into 'x'"),
        ("a == 1 and", 10, "the expression ends where a value was expected"),
        ("a # b", 2, "unexpected character '#'"),
    ])
    func syntaxErrorsSayWhere(_ text: String, _ offset: Int, _ message: String) {
        #expect {
            _ = try CheckExpression.parse(text)
        } throws: { error in
            guard let error = error as? CheckExpression.SyntaxError else { return false }
            return error.offset == offset && error.message.hasPrefix(message)
        }
    }

    /// A type mismatch is an error for that resource, never a silent pass.
    @Test(arguments: [
        ("a > 'x'", #"{"a": 1}"#, "cannot order 1 and 'x'"),
        ("age(a) < 1d", #"{"a": "yesterday"}"#, "'yesterday' is not a timestamp"),
        ("a", #"{"a": "yes"}"#, "the expression does not give true or false"),
        ("all(a, b == 1)", #"{"a": 3}"#, ""),
        ("matches(a, '[')", #"{"a": "x"}"#, "'[' is not a regular expression"),
    ])
    func evaluationErrorsAreErrors(_ text: String, _ json: String, _ message: String) throws {
        let expression = try CheckExpression.parse(text)
        let value = try JSONProjection([FieldPath("")]).apply(Data(json.utf8))
        if message.isEmpty {
            // all() over a single value treats it as a list of one (an XML element read alone).
            #expect(try expression.holds(for: value, now: now) == false)
            return
        }
        #expect {
            _ = try expression.holds(for: value, now: now)
        } throws: { error in
            (error as? CheckExpression.EvaluationError)?.message.hasPrefix(message) == true
        }
    }
}
