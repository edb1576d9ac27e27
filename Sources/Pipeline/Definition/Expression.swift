import Foundation

/// The expression language of declarative checks: a small, total language over one resource's
/// JSON (documented in pipelines/checks/README.md).
///
///     password_policy.min_length >= 14 and not (status == 'SUSPENDED')
///     all(rules, type != 'deletion') and count(members) <= 5
///     age(last_rotated) <= 90d            # the run's clock minus a timestamp
///     matches(login, '^svc-') or starts_with(lower(email), 'admin')
///
/// Values: null, booleans, numbers, strings, lists, objects, timestamps and durations. A path
/// (`a.b.c`) reads the current value (the resource, or a list's element inside `all`, `any`,
/// `none` and `count`); `@` is the current value itself; a missing field is null. Comparisons of
/// mismatched kinds, and arithmetic on what is not a number, a timestamp or a duration, are
/// errors: the resource is then not verified, never passed.
public indirect enum CheckExpression: Sendable, Hashable {
    case literal(Literal)
    case path([String])
    case current
    case now
    case not(CheckExpression)
    case and(CheckExpression, CheckExpression)
    case or(CheckExpression, CheckExpression)
    case compare(Comparison, CheckExpression, CheckExpression)
    case arithmetic(Operator, CheckExpression, CheckExpression)
    case call(Function, [CheckExpression])

    public enum Literal: Sendable, Hashable {
        case null, bool(Bool), number(Double), string(String), duration(Double)
    }
    public enum Comparison: String, Sendable, Hashable { case eq = "==", ne = "!=", lt = "<", le = "<=", gt = ">", ge = ">=" }
    public enum Operator: String, Sendable, Hashable { case plus = "+", minus = "-" }

    public enum Function: String, Sendable, Hashable, CaseIterable {
        case all, any, none, count, len, exists, contains, starts_with, ends_with, matches, lower, upper, date, age
        case days

        /// How many arguments: a range.
        var arity: ClosedRange<Int> {
            switch self {
            case .all, .any, .none: return 2...2
            case .count: return 1...2
            case .len, .exists, .lower, .upper, .date, .age, .days: return 1...1
            case .contains, .starts_with, .ends_with, .matches: return 2...2
            }
        }
    }

    /// Every path the expression reads, relative to the current value (paths inside `all` and
    /// the like are under their list's path, with `[]` between).
    public var paths: [[String]] {
        switch self {
        case .literal, .now: return []
        case .current: return [[]]
        case .path(let components): return [components]
        case .not(let inner): return inner.paths
        case .and(let a, let b), .or(let a, let b), .compare(_, let a, let b), .arithmetic(_, let a, let b):
            return a.paths + b.paths
        case .call(let function, let arguments):
            switch function {
            case .all, .any, .none, .count:
                guard arguments.count == 2 else { return arguments.flatMap(\.paths) }
                let lists = arguments[0].paths
                let inner = arguments[1].paths
                return lists + lists.flatMap { list in inner.map { list + ["[]"] + $0 } }
            default:
                return arguments.flatMap(\.paths)
            }
        }
    }

    // MARK: Parsing

    public struct SyntaxError: Error, Sendable, Equatable {
        /// Offset in characters from the expression's start.
        public let offset: Int
        public let message: String
    }

    public static func parse(_ text: String) throws(SyntaxError) -> CheckExpression {
        var parser = Parser(tokens: try Lexer.tokens(Array(text)), end: text.count)
        let expression = try parser.orExpression()
        if let extra = parser.peek {
            throw SyntaxError(offset: extra.offset, message: "unexpected \(extra.kind.description) after the expression")
        }
        return expression
    }

    struct Token {
        enum Kind: Equatable {
            case number(Double), string(String), duration(Double), word(String), symbol(String)

            var description: String {
                switch self {
                case .number(let n): return "number \(n)"
                case .string(let s): return "string '\(s)'"
                case .duration: return "duration"
                case .word(let w): return "'\(w)'"
                case .symbol(let s): return "'\(s)'"
                }
            }
        }
        let kind: Kind
        let offset: Int
    }

    enum Lexer {
        static let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800]

        static func tokens(_ chars: [Character]) throws(SyntaxError) -> [Token] {
            var out: [Token] = []
            var i = 0
            while i < chars.count {
                let c = chars[i]
                if c == " " || c == "\t" || c == "\n" { i += 1; continue }
                let start = i
                if c.isASCII && c.isNumber {
                    while i < chars.count, chars[i].isASCII && (chars[i].isNumber || chars[i] == ".") { i += 1 }
                    guard let value = Double(String(chars[start..<i])) else {
                        throw SyntaxError(offset: start, message: "'\(String(chars[start..<i]))' is not a number")
                    }
                    if i < chars.count, let unit = units[chars[i]], i + 1 >= chars.count || !isWordCharacter(chars[i + 1]) {
                        i += 1
                        out.append(Token(kind: .duration(value * unit), offset: start))
                    } else {
                        if i < chars.count, isWordCharacter(chars[i]) {
                            throw SyntaxError(offset: i, message: "a number runs into '\(chars[i])' (durations take s, m, h, d or w)")
                        }
                        out.append(Token(kind: .number(value), offset: start))
                    }
                    continue
                }
                if c == "'" || c == "\"" {
                    i += 1
                    var text = ""
                    while i < chars.count, chars[i] != c {
                        if chars[i] == "\\", i + 1 < chars.count { i += 1 }
                        text.append(chars[i])
                        i += 1
                    }
                    guard i < chars.count else { throw SyntaxError(offset: start, message: "a string that is never closed") }
                    i += 1
                    out.append(Token(kind: .string(text), offset: start))
                    continue
                }
                if isWordCharacter(c) || c == "@" {
                    while i < chars.count, isWordCharacter(chars[i]) || chars[i] == "." || (chars[i] == "@" && i == start) { i += 1 }
                    out.append(Token(kind: .word(String(chars[start..<i])), offset: start))
                    continue
                }
                let two = i + 1 < chars.count ? String(chars[i...i + 1]) : ""
                if ["==", "!=", "<=", ">="].contains(two) {
                    out.append(Token(kind: .symbol(two), offset: start))
                    i += 2
                    continue
                }
                if "<>()+-,".contains(c) {
                    out.append(Token(kind: .symbol(String(c)), offset: start))
                    i += 1
                    continue
                }
                if c == "=" { throw SyntaxError(offset: start, message: "'=' is not a comparison: use '=='") }
                throw SyntaxError(offset: start, message: "unexpected character '\(c)'")
            }
            return out
        }

        static func isWordCharacter(_ c: Character) -> Bool {
            c.isASCII && (c.isLetter || c.isNumber || c == "_" || c == "$")
        }
    }

    struct Parser {
        let tokens: [Token]
        /// The text's length: where "the end" is.
        let end: Int
        var position = 0

        var peek: Token? { position < tokens.count ? tokens[position] : nil }

        mutating func take(_ symbol: String) -> Bool {
            if let token = peek, token.kind == .symbol(symbol) || token.kind == .word(symbol) {
                position += 1
                return true
            }
            return false
        }

        mutating func expect(_ symbol: String, _ context: String) throws(SyntaxError) {
            guard take(symbol) else {
                throw SyntaxError(offset: peek?.offset ?? end,
                                  message: "expected '\(symbol)' \(context), found \(peek?.kind.description ?? "the end")")
            }
        }

        mutating func orExpression() throws(SyntaxError) -> CheckExpression {
            var left = try andExpression()
            while take("or") { left = .or(left, try andExpression()) }
            return left
        }

        mutating func andExpression() throws(SyntaxError) -> CheckExpression {
            var left = try notExpression()
            while take("and") { left = .and(left, try notExpression()) }
            return left
        }

        mutating func notExpression() throws(SyntaxError) -> CheckExpression {
            if take("not") { return .not(try notExpression()) }
            return try comparison()
        }

        mutating func comparison() throws(SyntaxError) -> CheckExpression {
            let left = try sum()
            for comparison in [Comparison.eq, .ne, .le, .ge, .lt, .gt] where take(comparison.rawValue) {
                return .compare(comparison, left, try sum())
            }
            return left
        }

        mutating func sum() throws(SyntaxError) -> CheckExpression {
            var left = try primary()
            while true {
                if take("+") { left = .arithmetic(.plus, left, try primary()) }
                else if take("-") { left = .arithmetic(.minus, left, try primary()) }
                else { return left }
            }
        }

        mutating func primary() throws(SyntaxError) -> CheckExpression {
            guard let token = peek else { throw SyntaxError(offset: end, message: "the expression ends where a value was expected") }
            position += 1
            switch token.kind {
            case .number(let n): return .literal(.number(n))
            case .string(let s): return .literal(.string(s))
            case .duration(let seconds): return .literal(.duration(seconds))
            case .symbol("("):
                let inner = try orExpression()
                try expect(")", "to close '('")
                return inner
            case .symbol("-"):
                if case .number(let n)? = peek?.kind { position += 1; return .literal(.number(-n)) }
                throw SyntaxError(offset: token.offset, message: "'-' must be followed by a number here")
            case .symbol(let s):
                throw SyntaxError(offset: token.offset, message: "unexpected '\(s)' where a value was expected")
            case .word(let word):
                switch word {
                case "true": return .literal(.bool(true))
                case "false": return .literal(.bool(false))
                case "null": return .literal(.null)
                case "now": return .now
                case "@": return .current
                case "and", "or", "not":
                    throw SyntaxError(offset: token.offset, message: "'\(word)' where a value was expected")
                default: break
                }
                if take("(") {
                    guard let function = Function(rawValue: word) else {
                        let known = Function.allCases.map(\.rawValue).joined(separator: ", ")
                        throw SyntaxError(offset: token.offset, message: "unknown function '\(word)' (known: \(known))")
                    }
                    var arguments: [CheckExpression] = []
                    if !take(")") {
                        repeat { arguments.append(try orExpression()) } while take(",")
                        try expect(")", "to close \(word)(")
                    }
                    guard function.arity.contains(arguments.count) else {
                        let wanted = function.arity.count == 1 ? "\(function.arity.lowerBound)" : "\(function.arity.lowerBound) or \(function.arity.upperBound)"
                        throw SyntaxError(offset: token.offset, message: "\(word)() takes \(wanted) argument\(function.arity.upperBound == 1 ? "" : "s"), given \(arguments.count)")
                    }
                    return .call(function, arguments)
                }
                let components = word.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                guard !components.contains(where: \.isEmpty), !word.hasPrefix("@") else {
                    throw SyntaxError(offset: token.offset, message: "'\(word)' is not a field path (names joined by '.')")
                }
                return .path(components)
            }
        }
    }
}

// MARK: Evaluation

extension CheckExpression {
    /// A value as expressions compute with it.
    public enum Value: Sendable, Equatable, CustomStringConvertible {
        case json(JSONValue)
        case date(Date)
        case duration(Double)

        public var description: String {
            switch self {
            case .json(.null): return "null"
            case .json(.bool(let b)): return String(b)
            case .json(.number(let n)): return n.rounded() == n && abs(n) < 1e15 ? String(Int(n)) : String(n)
            case .json(.string(let s)): return "'\(s)'"
            case .json(.array(let list)): return "a list of \(list.count)"
            case .json(.object): return "an object"
            case .date(let d): return Timestamp.iso8601(d)
            case .duration(let seconds): return seconds.truncatingRemainder(dividingBy: 86_400) == 0 ? "\(Int(seconds / 86_400))d" : "\(Int(seconds))s"
            }
        }
    }

    public struct EvaluationError: Error, Sendable, Equatable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// Whether the expression holds for `value` at the run's clock `now`.
    public func holds(for value: JSONValue, now: Date) throws(EvaluationError) -> Bool {
        guard case .json(.bool(let result)) = try evaluate(value, now: now) else {
            throw EvaluationError(message: "the expression does not give true or false")
        }
        return result
    }

    public func evaluate(_ current: JSONValue, now: Date) throws(EvaluationError) -> Value {
        func bool(_ expression: CheckExpression) throws(EvaluationError) -> Bool {
            switch try expression.evaluate(current, now: now) {
            case .json(.bool(let b)): return b
            case .json(.null): return false
            case let other: throw EvaluationError(message: "\(other) is not true or false")
            }
        }
        switch self {
        case .literal(.null): return .json(.null)
        case .literal(.bool(let b)): return .json(.bool(b))
        case .literal(.number(let n)): return .json(.number(n))
        case .literal(.string(let s)): return .json(.string(s))
        case .literal(.duration(let seconds)): return .duration(seconds)
        case .current: return .json(current)
        case .now: return .date(now)
        case .path(let components):
            var value = current
            for component in components {
                guard let next = value[component] else { return .json(.null) }
                value = next
            }
            return .json(value)
        case .not(let inner): return .json(.bool(!(try bool(inner))))
        case .and(let a, let b):
            guard try bool(a) else { return .json(.bool(false)) }
            return .json(.bool(try bool(b)))
        case .or(let a, let b):
            if try bool(a) { return .json(.bool(true)) }
            return .json(.bool(try bool(b)))
        case .compare(let comparison, let a, let b):
            return .json(.bool(try Self.compare(comparison, try a.evaluate(current, now: now), try b.evaluate(current, now: now))))
        case .arithmetic(let op, let a, let b):
            let (x, y) = (try a.evaluate(current, now: now), try b.evaluate(current, now: now))
            let sign = op == .plus ? 1.0 : -1.0
            switch (x, y) {
            case (.json(.number(let p)), .json(.number(let q))): return .json(.number(p + sign * q))
            case (.date(let d), .duration(let s)): return .date(d.addingTimeInterval(sign * s))
            case (.duration(let s), .duration(let t)): return .duration(s + sign * t)
            case (.date(let d), .date(let e)) where op == .minus: return .duration(d.timeIntervalSince(e))
            default: throw EvaluationError(message: "cannot \(op == .plus ? "add" : "subtract") \(y) \(op == .plus ? "to" : "from") \(x)")
            }
        case .call(let function, let arguments):
            return try call(function, arguments, current, now: now)
        }
    }

    func call(_ function: Function, _ arguments: [CheckExpression], _ current: JSONValue, now: Date) throws(EvaluationError) -> Value {
        func value(_ index: Int) throws(EvaluationError) -> Value { try arguments[index].evaluate(current, now: now) }
        func text(_ index: Int) throws(EvaluationError) -> String? {
            switch try value(index) {
            case .json(.string(let s)): return s
            case .json(.null): return nil
            case let other: throw EvaluationError(message: "\(function.rawValue)() needs text, found \(other)")
            }
        }
        func list(_ index: Int) throws(EvaluationError) -> [JSONValue] {
            switch try value(index) {
            case .json(.array(let items)): return items
            case .json(.null): return []
            case .json(let single): return [single]  // XML answers read one element as an object
            case let other: throw EvaluationError(message: "\(function.rawValue)() needs a list, found \(other)")
            }
        }
        func timestamp(_ index: Int) throws(EvaluationError) -> Date? {
            switch try value(index) {
            case .date(let d): return d
            case .json(.null): return nil
            case .json(.string(let s)):
                guard let d = Timestamp.parse(s) else { throw EvaluationError(message: "'\(s)' is not a timestamp") }
                return d
            case .json(.number(let n)): return Date(timeIntervalSince1970: n > 1e11 ? n / 1000 : n)
            case let other: throw EvaluationError(message: "\(function.rawValue)() needs a timestamp, found \(other)")
            }
        }
        switch function {
        case .all, .any, .none:
            let items = try list(0)
            var matching = 0
            for item in items {
                switch try arguments[1].evaluate(item, now: now) {
                case .json(.bool(true)): matching += 1
                case .json(.bool(false)), .json(.null): break
                case let other: throw EvaluationError(message: "\(function.rawValue)(): \(other) is not true or false")
                }
            }
            switch function {
            case .all: return .json(.bool(matching == items.count))
            case .any: return .json(.bool(matching > 0))
            default: return .json(.bool(matching == 0))
            }
        case .count:
            let items = try list(0)
            guard arguments.count == 2 else { return .json(.number(Double(items.count))) }
            var matching = 0
            for item in items {
                if case .json(.bool(true)) = try arguments[1].evaluate(item, now: now) { matching += 1 }
            }
            return .json(.number(Double(matching)))
        case .len:
            switch try value(0) {
            case .json(.string(let s)): return .json(.number(Double(s.count)))
            case .json(.array(let a)): return .json(.number(Double(a.count)))
            case .json(.object(let o)): return .json(.number(Double(o.count)))
            case .json(.null): return .json(.number(0))
            case let other: throw EvaluationError(message: "len() of \(other)")
            }
        case .exists:
            if case .json(.null) = try value(0) { return .json(.bool(false)) }
            return .json(.bool(true))
        case .contains:
            switch try value(0) {
            case .json(.array(let items)):
                guard case .json(let needle) = try value(1) else { return .json(.bool(false)) }
                return .json(.bool(items.contains(needle)))
            default:
                guard let haystack = try text(0), let needle = try text(1) else { return .json(.bool(false)) }
                return .json(.bool(haystack.contains(needle)))
            }
        case .starts_with, .ends_with:
            guard let haystack = try text(0), let needle = try text(1) else { return .json(.bool(false)) }
            return .json(.bool(function == .starts_with ? haystack.hasPrefix(needle) : haystack.hasSuffix(needle)))
        case .matches:
            guard let haystack = try text(0), let pattern = try text(1) else { return .json(.bool(false)) }
            guard let regex = try? NSRegularExpression(pattern: pattern) else {
                throw EvaluationError(message: "'\(pattern)' is not a regular expression")
            }
            let range = NSRange(haystack.startIndex..., in: haystack)
            return .json(.bool(regex.firstMatch(in: haystack, range: range) != nil))
        case .lower, .upper:
            guard let s = try text(0) else { return .json(.null) }
            return .json(.string(function == .lower ? s.lowercased() : s.uppercased()))
        case .date:
            return try timestamp(0).map { .date($0) } ?? .json(.null)
        case .age:
            return try timestamp(0).map { .duration(now.timeIntervalSince($0)) } ?? .json(.null)
        case .days:
            guard case .json(.number(let n)) = try value(0) else { throw EvaluationError(message: "days() needs a number") }
            return .duration(n * 86_400)
        }
    }

    static func compare(_ comparison: Comparison, _ a: Value, _ b: Value) throws(EvaluationError) -> Bool {
        func order<T: Comparable>(_ x: T, _ y: T) -> Bool {
            switch comparison {
            case .eq: return x == y
            case .ne: return x != y
            case .lt: return x < y
            case .le: return x <= y
            case .gt: return x > y
            case .ge: return x >= y
            }
        }
        switch (a, b) {
        case (.json(.number(let x)), .json(.number(let y))): return order(x, y)
        case (.json(.string(let x)), .json(.string(let y))): return order(x, y)
        case (.date(let x), .date(let y)): return order(x, y)
        case (.duration(let x), .duration(let y)): return order(x, y)
        case (.date(let x), .json(.string(let s))), (.json(.string(let s)), .date(let x)):
            guard let y = Timestamp.parse(s) else { throw EvaluationError(message: "'\(s)' is not a timestamp") }
            if case .date = a { return order(x, y) }
            return order(y, x)
        default:
            // Equality across kinds (null against a value, a boolean) is defined; order is not.
            switch comparison {
            case .eq: return a == b
            case .ne: return a != b
            default:
                if case .json(.null) = a { return false }
                if case .json(.null) = b { return false }
                throw EvaluationError(message: "cannot order \(a) and \(b)")
            }
        }
    }
}
