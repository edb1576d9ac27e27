import ArgumentParser
import Foundation
import Pipeline

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the pipelines and the organizations they can run for."
    )

    @OptionGroup var locations: LocationOptions
    @OptionGroup var backends: BackendOptions

    func run() async throws {
        let files = try DefinitionFiles.expand([locations.pipelines])
        let loader = DefinitionLoader(vocabulary: BuiltIn.vocabulary(locations.pipelines))
        var broken = false
        print("Pipelines (\(locations.pipelines)):")
        for file in files {
            let result = loader.load(file: file, within: locations.pipelines)
            if let definition = result.definition {
                let stages = definition.stages.map(\.kind.rawValue).joined(separator: " → ")
                let schedule = definition.schedule.map { "schedule \($0.expression) UTC" } ?? "on demand"
                print("  \(definition.name)  \(definition.description)")
                print("      \(stages); \(schedule)")
            } else {
                broken = true
                print("  \(file)  (invalid: run `pipeline lint \(file)`)")
            }
        }
        let organizations: [Organization]
        do {
            organizations = try await backends.openStore().organizations()
        } catch {
            throw report(error)
        }
        print("Organizations (the store):")
        for organization in organizations {
            let integrations = organization.integrations.keys.sorted().joined(separator: ", ")
            print("  \(organization.id)  \(organization.name)  [\(integrations)]")
        }
        if organizations.isEmpty {
            print("  none: add one with `pipeline orgs add`, or import the demo ones with `pipeline orgs import fixtures/orgs`")
        }
        if broken { throw Exit.problems }
    }
}
