
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
        "CC6.3": "Access is granted, changed and removed by role, with least privilege and separation of duties",
        "CC6.6": "Logical access security measures against threats from outside the system boundaries",
        "CC6.7": "Transmission, movement and removal of information is restricted and protected",
        "CC7.1": "Detection of configuration changes and newly discovered vulnerabilities",
        "CC7.2": "System components are monitored for anomalies indicating malicious acts, natural disasters and errors",
        "A1.2": "Environmental protections, software, data backup and recovery infrastructure",
        "CC8.1": "Changes are authorized, tested, approved and implemented",
    ])

    public static let iso27001 = Framework(id: "iso27001", title: "ISO/IEC 27001:2022 Annex A", controls: [
        "A.5.17": "Authentication information",
        "A.5.18": "Access rights",
        "A.5.19": "Information security in supplier relationships",
        "A.8.2": "Privileged access rights",
        "A.8.3": "Information access restriction",
        "A.8.4": "Access to source code",
        "A.8.5": "Secure authentication",
        "A.8.8": "Management of technical vulnerabilities",
        "A.8.12": "Data leakage prevention",
        "A.8.13": "Information backup",
        "A.8.15": "Logging",
        "A.8.16": "Monitoring activities",
        "A.8.20": "Networks security",
        "A.8.24": "Use of cryptography",
        "A.8.28": "Secure coding",
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
