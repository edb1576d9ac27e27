import Foundation
import PipelineTesting
import Testing

/// Organizations, members and integrations live in the store: what a user changes there stays.
@Suite struct TenantTests {
    @Test func aFreshStoreHasNoOrganizationsAndSaysHowToAddOne() throws {
        let cli = try CLI(demo: false)
        let run = try cli.run(["run", "report", "--org", "acme"])
        #expect(run.status == 2)
        #expect(run.stderr.contains("unknown organization 'acme'"))
        #expect(run.stderr.contains("pipeline orgs import fixtures/orgs"))
        let all = try cli.run(["run", "nightly", "--all-orgs"])
        #expect(all.status == 2)
        #expect(all.stderr.contains("no organizations to run"))
    }

    @Test func anOrganizationAddedByHandRunsWithTheIntegrationItIsGiven() throws {
        let cli = try CLI(demo: false)
        let added = try cli.run(["orgs", "add", "hooli", "--name", "Hooli XYZ", "--owner", "gavin@hooli.example"])
        #expect(added.status == 0, "\(added.stderr)")
        #expect(try cli.run(["orgs", "add", "hooli", "--name", "Again"]).stderr.contains("organization hooli already exists"))
        let list = try cli.run(["orgs", "list", "--format", "json"])
        let object = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any]
        #expect((object?["organizations"] as? [[String: Any]])?.map { $0["name"] as? String } == ["Hooli XYZ"])
        // Nothing to collect from yet: the report says so, and no check passes.
        let early = try cli.run(["run", "report", "--org", "hooli"])
        #expect(early.status == 0, "\(early.stderr)")
        #expect(early.stdout.contains("not connected: aws, github, google_workspace (their checks are not verified)"))
        #expect(early.stdout.hasPrefix("hooli: score 0%"))
        // Its owner connects GitHub (here a recording of another organization's answers).
        let connect = try cli.run(["integrations", "add", "--org", "hooli", "--kind", "github", "--account", "globex",
                                   "--recording", "fixtures/orgs/globex/github.jsonl", "--actor", "gavin@hooli.example"])
        #expect(connect.status == 0, "\(connect.stderr)")
        let run = try cli.run(["run", "report", "--org", "hooli", "--quiet"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.hasPrefix("hooli: score"))
        #expect(try cli.sql("SELECT action FROM audit_log WHERE organization_id = 'hooli' AND (action LIKE 'organization.%' OR action LIKE 'integration.%') ORDER BY seq")
                == "organization.created\nintegration.added")
    }

    @Test func removalsStick() throws {
        try ExternalTool.require("python3")
        let cli = try CLI()
        #expect(try cli.run(["members", "remove", "--org", "acme", "--user", "vic@acme.example"]).status == 0)
        #expect(try cli.run(["integrations", "remove", "--org", "initech", "--kind", "github"]).status == 0)
        // Only the owner may remove an organization.
        let byAdmin = try cli.run(["orgs", "remove", "globex", "--actor", "ada@globex.example"])
        #expect(byAdmin.status == 1, "\(byAdmin.stderr)")
        #expect(try cli.run(["orgs", "remove", "globex"]).status == 0)

        let nightly = try cli.run(["run", "nightly", "--all-orgs", "--quiet", "--json"])
        let runs = (try JSONSerialization.jsonObject(with: Data(nightly.stdout.utf8)) as? [String: Any])?["runs"] as? [[String: Any]]
        #expect(runs?.compactMap { $0["organization_id"] as? String } == ["acme", "initech"])
        #expect((runs?.last?["unconnected"] as? [String]) == ["github"])
        #expect(try !cli.run(["members", "list", "--org", "acme"]).stdout.contains("vic@acme.example"))
        #expect(!(try cli.run(["integrations", "list", "--org", "initech"]).stdout.contains("github")))

        // Importing the demo again adds nothing back: acme and initech are left as they are, and
        // globex stays removed unless asked for.
        let again = try cli.run(["orgs", "import"] + CLI.demo)
        #expect(again.status == 0)
        #expect(again.stdout.contains("acme: already in the store; left as it is"))
        #expect(again.stdout.contains("globex: removed by system; not imported again"))
        #expect(try !cli.run(["members", "list", "--org", "acme"]).stdout.contains("vic@acme.example"))
        #expect(try cli.run(["orgs", "list"]).stdout.split(separator: "\n").map { $0.split(separator: "\t")[0] } == ["acme", "initech"])
        #expect(try cli.run(["orgs", "import", "fixtures/orgs/globex", "--restore-removed"]).stdout == "globex: imported (4 members, integrations: aws, github, google_workspace, 1 document, 3 exceptions)\n")
        // The removed organization's history stayed.
        #expect(try cli.sql("SELECT count(*) FROM audit_log WHERE organization_id = 'globex' AND action = 'organization.removed'") == "1")
    }

    @Test func readingMembersAndIntegrationsNeedsARoleThatMaySeeThem() throws {
        let cli = try CLI()
        let viewer = try cli.run(["members", "list", "--org", "acme", "--actor", "vic@acme.example"])
        #expect(viewer.status == 1)
        #expect(viewer.stderr.contains("vic@acme.example is a viewer of acme and may not see members (needs users:manage)"))
        let member = try cli.run(["integrations", "list", "--org", "acme", "--actor", "mel@acme.example"])
        #expect(member.status == 1)
        #expect(member.stderr.contains("may not see integrations"))
        let admin = try cli.run(["integrations", "list", "--org", "acme", "--actor", "ada@acme.example"])
        #expect(admin.status == 0)
        #expect(admin.stdout.split(separator: "\n").map { $0.split(separator: "\t")[0] } == ["aws", "github", "google_workspace"])
        #expect(admin.stdout.contains("github\taccount=acme-corp recording="))
        #expect(try cli.sql("SELECT count(*) FROM audit_log WHERE action = 'access.refused'") == "2")
    }

    @Test func onlyTheOperatorAddsOrImportsOrganizations() throws {
        let cli = try CLI()
        let add = try cli.run(["orgs", "add", "evil", "--name", "Evil", "--actor", "olive@acme.example"])
        #expect(add.status == 1)
        #expect(add.stderr.contains("olive@acme.example may not add organizations"))
        #expect(try cli.run(["orgs", "import", "fixtures/orgs", "--actor", "olive@acme.example"]).status == 1)
    }

    @Test func aBrokenOrganizationFileIsNamedAndTheOthersImported() throws {
        let cli = try CLI(demo: false)
        let folder = try ExternalTool.temporaryDirectory()
        for org in ["acme", "globex"] {
            try FileManager.default.copyItem(at: CLI.projectRoot.appendingPathComponent("fixtures/orgs/\(org)"),
                                             to: folder.appendingPathComponent(org))
        }
        let broken = folder.appendingPathComponent("globex/organization.yml")
        try "name: Globex\nmembers:\n  - { actor: x, role: emperor }\n".write(to: broken, atomically: true, encoding: .utf8)
        let result = try cli.run(["orgs", "import", folder.path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("\(broken.path):3:"))
        #expect(result.stdout.contains("acme: imported"))
        #expect(try cli.run(["orgs", "list"]).stdout.hasPrefix("acme\tAcme Corp\taws,github,google_workspace\n"))
    }
}
