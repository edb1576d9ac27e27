import Foundation
import PipelineTesting
import Testing

/// The deployment files in `deploy/`, checked by tools nobody here wrote, and their commands run
/// as written against a real PostgreSQL.
@Suite(.serialized) struct DeployTests {
    static let deploy = CLI.projectRoot.appendingPathComponent("deploy")

    @Test(.needs("kubernetes-validate")) func theKubernetesManifestsValidateAgainstTheirSchemas() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.deploy.appendingPathComponent("kubernetes").path)
            .filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(files == ["enqueue-cronjob.yaml", "worker-deployment.yaml"])
        let result = try ExternalTool.run("kubernetes-validate", ["--strict"] + files.map { "deploy/kubernetes/\($0)" },
                                          directory: CLI.projectRoot)
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.components(separatedBy: "passed").count - 1 == 2, "\(result.stdout)")
    }

    /// systemd's own checker, with the binary path pointing at the built one (it checks that it exists).
    @Test(.needs("systemd-analyze")) func theSystemdUnitsVerify() throws {
        let folder = try ExternalTool.temporaryDirectory()
        let names = ["lightsail-worker.service", "lightsail-due.service", "lightsail-due.timer"]
        for name in names {
            let text = try String(contentsOf: Self.deploy.appendingPathComponent("systemd/\(name)"), encoding: .utf8)
            try text.replacingOccurrences(of: "/usr/local/bin/pipeline", with: CLI.binary)
                .write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        let result = try ExternalTool.run("systemd-analyze", ["verify"] + names, directory: folder)
        #expect(result.status == 0 && !result.stderr.contains("lightsail-"), "\(result.stdout)\(result.stderr)")
    }

    /// Two stages, the second holding the binary and the definitions only; the build stage
    /// installs every -dev package the build script does (they cannot drift apart unnoticed).
    @Test(.needs("python3")) func theDockerfileIsAMultiStageBuildOfThisRepository() throws {
        let script = """
            import json, sys
            from dockerfile_parse import DockerfileParser
            d = DockerfileParser(path=sys.argv[1])
            print(json.dumps({"stages": [s["value"] for s in d.structure if s["instruction"] == "FROM"],
                              "copies": [s["value"] for s in d.structure if s["instruction"] == "COPY"],
                              "runs": [s["value"] for s in d.structure if s["instruction"] == "RUN"],
                              "entrypoint": d.structure[-2]["value"] if len(d.structure) > 1 else ""}))
            """
        let result = try ExternalTool.run("python3", ["-c", script, Self.deploy.appendingPathComponent("Dockerfile").path])
        #expect(result.status == 0, "\(result.stderr)")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let stages = try #require(parsed["stages"] as? [String])
        #expect(stages.count == 2 && stages[0].hasSuffix(" AS build") && stages[1].hasSuffix(" AS runtime"), "\(stages)")
        let copies = try #require(parsed["copies"] as? [String])
        #expect(copies.contains("--from=build /out/pipeline /usr/local/bin/pipeline"), "\(copies)")
        // Everything copied from the build context exists in the repository.
        for copy in copies where !copy.hasPrefix("--from") {
            let source = String(copy.split(separator: " ")[0])
            #expect(FileManager.default.fileExists(atPath: CLI.projectRoot.appendingPathComponent(source).path), "\(source)")
        }
        let install = try String(contentsOf: CLI.projectRoot.appendingPathComponent("scripts/install-packages"), encoding: .utf8)
        let devPackages = Set(install.split(whereSeparator: { " ()\n".contains($0) }).filter { $0.hasSuffix("-dev") }.map(String.init))
        let runs = (parsed["runs"] as? [String] ?? []).joined(separator: " ")
        for package in devPackages { #expect(runs.contains(package), "the Dockerfile's build stage lacks \(package)") }
    }

    /// The commands the CronJob, the Deployment's container and readiness probe, and the systemd
    /// units run, as written (paths moved into a temporary folder), against PostgreSQL.
    @Test(.needsPostgres) func theCommandsTheManifestsRunWork() throws {
        let bench = try QueueBench.make()
        let script = """
            import json, sys, yaml
            out = {}
            for name in sys.argv[1:]:
                doc = yaml.safe_load(open(name))
                spec = doc["spec"]
                pod = spec["jobTemplate"]["spec"]["template"]["spec"] if doc["kind"] == "CronJob" else spec["template"]["spec"]
                container = pod["containers"][0]
                out[doc["kind"]] = {"args": container["args"],
                                    "probe": container.get("readinessProbe", {}).get("exec", {}).get("command", [])}
            print(json.dumps(out))
            """
        let parsed = try ExternalTool.run("python3", ["-c", script, "deploy/kubernetes/enqueue-cronjob.yaml",
                                                      "deploy/kubernetes/worker-deployment.yaml"], directory: CLI.projectRoot)
        #expect(parsed.status == 0, "\(parsed.stderr)")
        let commands = try #require(try JSONSerialization.jsonObject(with: Data(parsed.stdout.utf8)) as? [String: [String: [String]]])
        let scratch = bench.cli.dataDir.path
        func relocated(_ arguments: [String]) -> [String] {
            arguments.map { $0.replacingOccurrences(of: "/var/lib/lightsail", with: scratch)
                .replacingOccurrences(of: "/var/lib/node_exporter/textfile", with: scratch) }
        }
        try FileManager.default.createDirectory(atPath: scratch + "/metrics", withIntermediateDirectories: true)
        let light = bench.pipelines.appendingPathComponent("light.yml")
        try String(contentsOf: light, encoding: .utf8).replacingOccurrences(of: "stages:", with: "schedule: \"0 * * * *\"\nstages:")
            .write(to: light, atomically: true, encoding: .utf8)

        let enqueue = try bench.run(relocated(commands["CronJob"]?["args"] ?? []))
        #expect(enqueue.status == 0, "\(enqueue.stderr)")
        #expect(try bench.sql("SELECT count(*) FROM jobs WHERE state = 'available'") == "4")
        let worker = try bench.run(relocated(commands["Deployment"]?["args"] ?? []) + ["--exit-when-idle"])
        #expect(worker.status == 0, "\(worker.stderr.suffix(2000))")
        #expect(try bench.sql("SELECT count(*) FROM jobs WHERE state = 'succeeded'") == "4")
        #expect(FileManager.default.fileExists(atPath: scratch + "/metrics/worker.prom"))
        let probe = commands["Deployment"]?["probe"] ?? []
        #expect(probe.first == "/usr/local/bin/pipeline")
        let ready = try bench.run(Array(probe.dropFirst()))
        #expect(ready.status == 0, "\(ready.stdout)\(ready.stderr)")

        // The systemd units' ExecStart lines.
        for unit in ["lightsail-worker.service", "lightsail-due.service"] {
            let text = try String(contentsOf: Self.deploy.appendingPathComponent("systemd/\(unit)"), encoding: .utf8)
            let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("ExecStart=") })
            var arguments = relocated(line.dropFirst("ExecStart=".count).split(separator: " ").map(String.init))
            #expect(arguments.removeFirst() == "/usr/local/bin/pipeline")
            if arguments.first == "worker" { arguments.append("--exit-when-idle") }
            let result = try bench.run(arguments)
            #expect(result.status == 0, "\(unit): \(result.stderr.suffix(2000))")
        }
    }
}
