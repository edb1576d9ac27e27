
/// The frameworks and controls checks map to, with the titles a report prints.
public enum ControlCatalog {
    public struct Framework: Sendable {
        public let id: String
        public let title: String
        public let controls: [String: String]
    }

    public static let soc2 = Framework(id: "soc2", title: "SOC 2 (2017 Trust Services Criteria)", controls: [
        "CC6.1": "Logical access security over protected information assets",
        "CC6.2": "Registration and authorization of users before access is granted",
        "CC7.1": "Detection of configuration changes and newly discovered vulnerabilities",
        "CC8.1": "Changes are authorized, tested, approved and implemented",
    ])

    public static let iso27001 = Framework(id: "iso27001", title: "ISO/IEC 27001:2022 Annex A", controls: [
        "A.5.17": "Authentication information",
        "A.8.4": "Access to source code",
        "A.8.5": "Secure authentication",
        "A.8.8": "Management of technical vulnerabilities",
        "A.8.32": "Change management",
    ])

    public static let frameworks: [String: Framework] = [soc2.id: soc2, iso27001.id: iso27001]

    public static func title(of control: ControlRef) -> String {
        frameworks[control.framework]?.controls[control.id] ?? control.id
    }

    public static func frameworkTitle(_ id: String) -> String {
        frameworks[id]?.title ?? id
    }
}
