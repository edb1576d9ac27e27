import Foundation
import PipelineTesting
import Testing

/// A Google Workspace directory as the fixture server serves it, two users a page: alice (super
/// admin, 2SV enrolled and enforced), bob (not enrolled), carl (suspended: not counted), dana
/// (created long ago, never signed in), eve (delegated admin without 2SV).
func directoryWorld(publicKey: String, subject: String = "admin@hooli.example") -> [String: Any] {
    func user(_ name: String, enrolled: Bool, enforced: Bool = false, admin: Bool = false, delegated: Bool = false,
              suspended: Bool = false, lastLogin: String = "2026-11-20T09:00:00.000Z") -> [String: Any] {
        ["kind": "admin#directory#user", "id": "1\(abs(name.hashValue) % 100_000)", "primaryEmail": "\(name)@hooli.example",
         "name": ["givenName": name, "familyName": "Hooli", "fullName": "\(name) Hooli"],
         "isAdmin": admin, "isDelegatedAdmin": delegated, "lastLoginTime": lastLogin,
         "creationTime": "2024-02-02T23:30:06.000Z", "agreedToTerms": true, "suspended": suspended, "archived": false,
         "changePasswordAtNextLogin": false, "isEnrolledIn2Sv": enrolled, "isEnforcedIn2Sv": enforced,
         "orgUnitPath": "/", "customerId": "C01hooli"]
    }
    return ["google": [
        "client_email": "lightsail@hooli-audit.iam.gserviceaccount.com", "public_key": publicKey, "subject": subject,
        "access_token": "ya29.fixture", "customer": "C01hooli", "page_size": 2,
        "users": [user("alice", enrolled: true, enforced: true, admin: true), user("bob", enrolled: false),
                  user("carl", enrolled: false, suspended: true),
                  user("dana", enrolled: true, enforced: true, lastLogin: "1970-01-01T00:00:00.000Z"),
                  user("eve", enrolled: false, delegated: true)],
        "roles": [["kind": "admin#directory#role", "roleId": "91447453409034241", "roleName": "_SEED_ADMIN_ROLE",
                   "isSystemRole": true, "isSuperAdminRole": true]],
        "role_assignments": [["kind": "admin#directory#roleAssignment", "roleAssignmentId": "9144745340903424",
                              "roleId": "91447453409034241", "assignedTo": "1", "scopeType": "CUSTOMER"]],
    ]]
}

func directoryDefinition(in folder: URL) throws -> URL {
    let definition = folder.appendingPathComponent("directory.yml")
    try """
    name: directory
    description: The Google Workspace directory.
    stages:
      - type: collect
        sources: [google_workspace]
      - type: validate
        frameworks: [soc2, iso27001]
      - type: store
    """.write(to: definition, atomically: true, encoding: .utf8)
    return definition
}

@Suite(.serialized) struct LiveGoogleTests {
    func serviceAccount(_ keys: (privatePEM: String, publicPEM: String), server: FixtureAPIServer, in folder: URL) throws -> URL {
        let file = folder.appendingPathComponent("service-account.json")
        let json: [String: Any] = ["type": "service_account", "project_id": "hooli-audit", "private_key_id": "6f1c2a9e0b",
                                   "private_key": keys.privatePEM, "client_email": "lightsail@hooli-audit.iam.gserviceaccount.com",
                                   "client_id": "1099", "token_uri": server.url.appendingPathComponent("token").absoluteString]
        try JSONSerialization.data(withJSONObject: json).write(to: file)
        return file
    }

    @Test func aServiceAccountWithDelegationReadsTheDirectoryAndItsKeyAppearsNowhere() throws {
        let keys = try FixtureAPIServer.rsaKeyPair()
        let server = try FixtureAPIServer(world: directoryWorld(publicKey: keys.publicPEM))
        let cli = try hooli()
        let file = try serviceAccount(keys, server: server, in: cli.dataDir)
        let add = try cli.run(["integrations", "add", "--org", "hooli", "--kind", "google_workspace", "--service-account-file", file.path,
                               "--subject", "admin@hooli.example", "--customer", "C01hooli", "--api-url", server.url.absoluteString])
        #expect(add.status == 0, "\(add.stderr)")
        try FileManager.default.removeItem(at: file)
        let probe = try cli.run(["integrations", "test", "--org", "hooli", "--kind", "google_workspace"])
        #expect(probe.stdout == "hooli: google_workspace works: read the user directory of customer C01hooli\n", "\(probe.stderr)")

        let definition = try directoryDefinition(in: cli.dataDir)
        let run = try cli.run(["run", definition.path, "--org", "hooli", "--json", "--as-of", "2026-11-28T00:00:00Z"])
        #expect(run.status == 0, "\(run.stderr)")
        let checks = checkStatuses(try runJSON(run))
        #expect(checks == ["google_workspace.2sv-enrolled": "fail", "google_workspace.2sv-enforced": "fail",
                           "google_workspace.admins-2sv": "fail", "google_workspace.no-inactive-accounts": "fail",
                           "google_workspace.super-admins-limited": "fail"])
        #expect(try cli.sql("SELECT findings FROM check_results WHERE check_id = 'google_workspace.2sv-enrolled'")
                == #"["bob@hooli.example: not enrolled in 2-step verification","eve@hooli.example: not enrolled in 2-step verification"]"#)
        #expect(try cli.sql("SELECT findings FROM check_results WHERE check_id = 'google_workspace.no-inactive-accounts'")
                == #"["dana@hooli.example: never signed in"]"#)
        // Three pages of users, one token for the whole run.
        let stats = try server.stats()
        #expect((stats["by_path"] as? [String: Int])?.keys.filter { $0.hasPrefix("GET /admin/directory/v1/users") && $0.contains("projection=full") }.count == 3)
        #expect(stats["tokens_issued"] as? Int == 2)  // the probe's, then the run's
        #expect(try filesHolding("PRIVATE KEY", under: cli.dataDir).isEmpty)
        #expect(!run.stdout.contains("ya29.") && !run.stderr.contains("ya29."))
    }

    @Test func aSubjectWithoutDelegationIsAnAuthenticationErrorNamingIt() throws {
        let keys = try FixtureAPIServer.rsaKeyPair()
        let server = try FixtureAPIServer(world: directoryWorld(publicKey: keys.publicPEM))
        let cli = try hooli()
        let file = try serviceAccount(keys, server: server, in: cli.dataDir)
        #expect(try cli.run(["integrations", "add", "--org", "hooli", "--kind", "google_workspace", "--service-account-file", file.path,
                             "--subject", "intern@hooli.example", "--api-url", server.url.absoluteString]).status == 0)
        let probe = try cli.run(["integrations", "test", "--org", "hooli", "--kind", "google_workspace"])
        #expect(probe.status == 1)
        #expect(probe.stderr.contains("Google refused an access token for lightsail@hooli-audit.iam.gserviceaccount.com acting as intern@hooli.example (HTTP 401: unauthorized_client"))
        // Another key than the one Google holds: the signature does not verify.
        let other = try FixtureAPIServer.rsaKeyPair()
        let wrong = try serviceAccount(other, server: server, in: cli.dataDir)
        #expect(try cli.run(["integrations", "add", "--org", "hooli", "--kind", "google_workspace", "--service-account-file", wrong.path,
                             "--subject", "admin@hooli.example", "--api-url", server.url.absoluteString]).status == 0)
        let run = try cli.run(["run", try directoryDefinition(in: cli.dataDir).path, "--org", "hooli"])
        #expect(run.status == 1)
        #expect(run.stderr.contains("Google refused an access token") && run.stderr.contains("Invalid JWT Signature"))
        // Not a service account key at all: refused when added.
        try "{\"type\": \"authorized_user\"}".write(to: wrong, atomically: true, encoding: .utf8)
        let bad = try cli.run(["integrations", "add", "--org", "hooli", "--kind", "google_workspace", "--service-account-file", wrong.path,
                               "--subject", "admin@hooli.example"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("is not a service account key"))
    }
}
