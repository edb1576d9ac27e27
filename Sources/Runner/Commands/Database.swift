import ArgumentParser
import Foundation
import Pipeline
import Stages
import Storage
import Transport

struct Database: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db",
        abstract: "Manage the database schema.",
        subcommands: [Migrate.self]
    )

    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply pending migrations (PostgreSQL: connect as the owner role).",
            discussion: """
            Migrations are versioned and forward-only, recorded in schema_migrations, and safe when \
            several processes start at once (an advisory lock). On PostgreSQL they create the \
            lightsail_app group role and grant it what the pipeline needs; grant it to the login role \
            the pipeline connects as (GRANT lightsail_app TO pipeline_user).
            """
        )

        @OptionGroup var backends: BackendOptions

        func run() async throws {
            do {
                let choice = try backends.databaseChoice()
                let description = backends.databaseDescription(choice)
                switch choice {
                case .sqlite:
                    let store = try await backends.openStore()
                    let state = try await store.migrationState()
                    print("\(description): schema at version \(state.applied) of \(state.latest)")
                case .postgres(let url):
                    let connection = try await PostgresConnection.connect(.init(url: url))
                    let applied = try await PostgresMigrations.migrate(connection)
                    print(applied.isEmpty
                          ? "\(description): schema already at version \(PostgresMigrations.latest)"
                          : "\(description): applied \(applied.map(String.init).joined(separator: ", ")); schema at version \(PostgresMigrations.latest)")
                }
            } catch {
                throw report(error)
            }
        }
    }
}
