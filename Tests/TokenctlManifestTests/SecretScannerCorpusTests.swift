import Foundation
import TestSupport
import Testing
import TokenctlManifest
import TokenctlModel

/// The secret scanner tuned on a corpus: ordinary manifest values that must pass, and secret shapes that must be caught,
/// with a finding that names the kind and shows only a masked excerpt.
///
/// Decisions the corpus records:
/// - A sha256 digest after `@sha256:` or `sha256:` is an identifier; the same 64 hexadecimal digits alone are a secret.
/// - Any other run of 32 or more hexadecimal digits is a secret, a bare 40-digit git commit hash included (it cannot be
///   told from a hex API key), so commit hashes are not in the ordinary list; short hashes (`4f2a9c1`) are.
/// - UUIDs are identifiers.
@Suite struct SecretScannerCorpusTests {
    static let digests = [
        "b323595f6e13d23fa68617123f8eaf018018a7a50026a2ccdeb0fab77be44db7",
        "5fbe0c96916b5138cb789771cdb3f561e1a11131f539923ec53ba05c66db5e22",
        "34f2b6a43f672a30fd9f65c4f070f54c54df80038daada8c17ea548537b99467",
        "2303824a4e3dc61fe3195d1a6e978029d4774876cc9aba9d2c60ef85eb96a845",
        "ea3e6869841f102bdb95fc7358ad94097770136193d88ac06a56a1c5a318d613",
        "cc19404716ae6866713e67dcab5cf1533395152a2a9b393c7fad39acc5c0b6d7",
    ]

    /// Values a manifest, a label or a message may hold: none is a secret.
    static let ordinary: [String] = [
        // The three from the issue.
        "payments/orders-api-ci-production-eu-west-1b",
        "https://grafana.example.com/d/aBcD1234/orders-overview?orgId=1&var-env=prod&from=now-6h",
        "kustomize.config.k8s.io/v1beta1",
        // Kubernetes apiVersions and kinds.
        "apps/v1", "batch/v1", "networking.k8s.io/v1", "rbac.authorization.k8s.io/v1", "apiextensions.k8s.io/v1",
        "admissionregistration.k8s.io/v1", "autoscaling/v2", "policy/v1", "storage.k8s.io/v1", "cert-manager.io/v1",
        "monitoring.coreos.com/v1", "argoproj.io/v1alpha1", "external-secrets.io/v1beta1", "gateway.networking.k8s.io/v1beta1",
        "kustomize.toolkit.fluxcd.io/v1", "helm.toolkit.fluxcd.io/v2beta2", "source.toolkit.fluxcd.io/v1beta2",
        "secrets-store.csi.x-k8s.io/v1", "coordination.k8s.io/v1", "flowcontrol.apiserver.k8s.io/v1beta3",
        "snapshot.storage.k8s.io/v1", "karpenter.k8s.aws/v1beta1", "tokenctl/v1", "CustomResourceDefinition",
        "MutatingWebhookConfiguration", "ValidatingAdmissionPolicyBinding", "HorizontalPodAutoscaler",
        // Kubernetes names, labels and DNS names.
        "orders-api-7d9f8b6c5-x2k4q", "orders-api-canary-6c8f9d7b4d-qz7xw", "orders-api-production-eu-west-1b",
        "app.kubernetes.io/name", "app.kubernetes.io/managed-by", "app.kubernetes.io/part-of=payments-platform",
        "kubernetes.io/service-account-token", "system:serviceaccount:payments:orders-api-ci", "eks.amazonaws.com/role-arn",
        "topology.kubernetes.io/zone=eu-west-1b", "node.kubernetes.io/instance-type=m6i.2xlarge",
        "prometheus-kube-prometheus-stack-prometheus-0", "ip-10-42-17-203.eu-west-1.compute.internal",
        "controller-revision-hash=orders-api-5f6b9c8d47", "pod-template-hash=7d9f8b6c5",
        "statefulset.kubernetes.io/pod-name=postgres-orders-0", "kube-system/coredns-5d78c9869d-8xk2p",
        "cert-manager-webhook-ca-bundle-injector", "orders-api-tls-certificate-secret", "default-token-x7k9p",
        "argocd-application-controller-0", "aws-load-balancer-controller-7c9d8f6b5-m4n2p", "ingress-nginx-controller-admission",
        "orders-api.payments.svc.cluster.local", "_orders-api._tcp.payments.svc.cluster.local",
        "payments-orders-api-ci-production-eu-west-1b-token", "team-payments-oncall-escalation-policy",
        "orders-api-db-credentials-rotation-2026-11", "helm.sh/chart=orders-api-2.3.1", "checksum/config=orders-api-v2",
        "fluxcd.io/reconcile-requested-at", "argocd.argoproj.io/sync-wave", "service.beta.kubernetes.io/aws-load-balancer-type",
        "nginx.ingress.kubernetes.io/rewrite-target", "cluster-autoscaler.kubernetes.io/safe-to-evict",
        "karpenter.sh/do-not-disrupt", "node-role.kubernetes.io/control-plane", "orders-api-hpa-cpu-utilization-70",
        "payments/orders-api-ci", "payments/orders-api/db-password", "payments/orders-api/github-token-ci-production",
        "platform/tokenctl-controller-leader-election", "observability/grafana-agent-flow-eu-west-1",
        "prod-eu-west-1-payments-orders-api-readonly", "orders-api-blue-green-preview-service",
        // URLs.
        "https://grafana.example.com/d/abc",
        "https://grafana.example.com/d/orders-api-slo/orders-api-slo?orgId=1&refresh=30s&var-cluster=prod-eu-west-1",
        "https://grafana.example.com/explore?orgId=1&left=%7B%22datasource%22:%22prometheus%22%7D",
        "https://github.com/acme/orders-api/actions/runs/9876543210/job/27182818284",
        "https://github.com/acme/orders-api/pull/1234/files#diff-orders-api-token-rotation",
        "https://gitlab.example.com/platform/tokenctl/-/merge_requests/1234",
        "https://console.aws.amazon.com/iam/home?region=eu-west-1#/roles/orders-api-ci",
        "https://prometheus.example.com/graph?g0.expr=rate(http_requests_total%7Bjob%3D%22orders-api%22%7D%5B5m%5D)&g0.tab=0",
        "https://vault.example.com:8200/v1/secret/data/payments/orders-api",
        "https://login.microsoftonline.com/common/oauth2/v2.0/token", "https://accounts.google.com/o/oauth2/v2/auth",
        "https://sentry.example.com/organizations/acme/issues/?project=42&query=is%3Aunresolved",
        "https://docs.example.com/runbooks/orders-api/token-rotation#rotating-the-ci-token",
        "https://kibana.example.com/app/discover#/?_g=(time:(from:now-24h,to:now))",
        "https://registry.npmjs.org/@acme%2forders-client/-/orders-client-2.3.1.tgz", "https://pypi.org/simple/orders-client/",
        "https://storage.googleapis.com/acme-artifacts/orders-api/releases/v2.3.1/orders-api-linux-amd64.tar.gz",
        "https://s3.eu-west-1.amazonaws.com/acme-terraform-state/payments/orders-api/terraform.tfstate",
        "https://acme.atlassian.net/browse/PAY-1234", "https://acme.pagerduty.com/service-directory/PX7K2QZ",
        "https://status.example.com/incidents/2026-11-29-orders-api-latency",
        "https://api.example.com/v2/orders?status=pending&limit=100&cursor=next",
        "postgres://orders_app@db.internal:5432/orders?sslmode=verify-full", "redis://cache.payments.svc.cluster.local:6379/0",
        "amqp://rabbitmq.payments.svc:5672/orders", "https://oidc.eks.eu-west-1.amazonaws.com/id/orders-api-cluster",
        "https://token.actions.githubusercontent.com", "https://hooks.example.com/tokenctl/rotation-events",
        "https://api.github.com/repos/acme/orders-api/environments/production/secrets/public-key",
        "https://dev.azure.com/acme/payments/_build/results?buildId=123456&view=logs",
        // Image references, with tags and digests.
        "ghcr.io/acme/orders-api:2.3.1", "ghcr.io/acme/orders-api@sha256:\(digests[0])",
        "docker.io/library/postgres:16.4-alpine3.20@sha256:\(digests[1])",
        "registry.k8s.io/ingress-nginx/controller:v1.11.2@sha256:\(digests[2])",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/payments/orders-api:main-4f2a9c1",
        "quay.io/prometheus/node-exporter:v1.8.2@sha256:\(digests[3])", "mcr.microsoft.com/dotnet/aspnet:8.0-bookworm-slim",
        "gcr.io/distroless/static-debian12:nonroot@sha256:\(digests[4])", "public.ecr.aws/eks/aws-load-balancer-controller:v2.8.3",
        "sha256:\(digests[5])", "quay.io/brancz/kube-rbac-proxy@sha256:\(digests[5])",
        "europe-west1-docker.pkg.dev/acme-prod-eu/payments/orders-api:2026.11.29-4f2a9c1",
        // UUIDs and generated names around them.
        "1aa93c47-6cb5-4e66-9d36-26f8df028fe2", "8F3C2A1B-4D5E-4F60-9A7B-0C1D2E3F4A5B", "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
        "tokenctl-e2e-1AA93C47-6CB5-4E66-9D36-26F8DF028FE2", "orders-api-run-0b7e3f5a-91c2-4d8e-b6a4-2f1c9e8d7a60",
        "/tmp/tokenctl-e2e-1AA93C47-6CB5-4E66-9D36-26F8DF028FE2/x/app.env", "./state/8f3c2a1b-4d5e-4f60-9a7b-0c1d2e3f4a5b/keys",
        "/subscriptions/1aa93c47-6cb5-4e66-9d36-26f8df028fe2/resourceGroups/rg-payments-prod-westeurope/providers/Microsoft.KeyVault/vaults/kv-payments-prod",
        // File paths.
        "/var/lib/tokenctl/stores/payments-v2/orders-api.vault", "/etc/ssl/certs/ca-certificates.crt",
        "/var/run/secrets/kubernetes.io/serviceaccount/token", "/run/secrets/eks.amazonaws.com/serviceaccount/token",
        "~/.config/tokenctl/credentials.d/orders-api.env", "/home/runner/work/orders-api/orders-api/manifests/production/tokens.yaml",
        "/usr/local/share/ca-certificates/acme-internal-root-ca-2026.crt",
        "/var/lib/kubelet/pods/1aa93c47-6cb5-4e66-9d36-26f8df028fe2/volumes/kubernetes.io~projected/kube-api-access-x7k9p",
        "/opt/tokenctl/libexec/stores/exec-store-vault-kv-v2", "manifests/payments/orders-api/tokens.production.yaml",
        "../shared/policies/default-policy.yaml", "/data/postgres/pg_wal/000000010000000A000000FF",
        "/sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice", "/etc/tokenctl/conf.d/50-orders-api-production.yaml",
        "C:\\ProgramData\\tokenctl\\stores\\orders-api.vault", "/Users/jane.doe/Library/Application Support/tokenctl/state.sqlite",
        "/var/log/tokenctl/audit-2026-11-29T00-00-00Z.jsonl", "secrets.vault", "file:/run/secrets/orders-api-db-password",
        "/nix/var/nix/profiles/per-user/runner/profile/bin/tokenctl", "/workspace/.github/workflows/rotate-orders-api-tokens.yml",
        // ARNs and cloud resource names.
        "arn:aws:iam::123456789012:role/orders-api-ci", "arn:aws:iam::123456789012:role/service-role/orders-api-ci-production-eu-west-1b",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:payments/orders-api/db-AbCdEf",
        "arn:aws:kms:eu-west-1:123456789012:key/1aa93c47-6cb5-4e66-9d36-26f8df028fe2", "arn:aws:s3:::acme-terraform-state/payments/*",
        "arn:aws:sts::123456789012:assumed-role/OrdersApiCi/GitHubActions", "arn:aws:eks:eu-west-1:123456789012:cluster/prod-eu-west-1",
        "arn:aws:ecr:eu-west-1:123456789012:repository/payments/orders-api", "arn:aws:sns:eu-west-1:123456789012:orders-api-alerts",
        "arn:aws:lambda:eu-west-1:123456789012:function:orders-api-token-rotator:live",
        "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy", "arn:aws:iam::aws:policy/service-role/AmazonEKSFargatePodExecutionRolePolicy",
        "projects/acme-prod-eu/secrets/orders-api-db-password/versions/latest",
        "projects/123456789012/locations/europe-west1/keyRings/payments/cryptoKeys/orders-api",
        "orders-api-ci@acme-prod-eu.iam.gserviceaccount.com", "OrdersApiCiProductionEuWest1b",
        // References, env names and settings.
        "env:TOKENCTL_MASTER_KEY", "env:ORDERS_API_GITHUB_TOKEN", "vault:secret/data/payments/orders-api#db_password",
        "ORDERS_API_DATABASE_PASSWORD_FILE", "TOKENCTL_STATE_DIR=/var/lib/tokenctl/state", "AWS_WEB_IDENTITY_TOKEN_FILE",
        "GOOGLE_APPLICATION_CREDENTIALS=/var/run/secrets/google/credentials.json", "npm_config_cache_directory_for_ci_builds",
        "scram-sha-256", "RSA-OAEP-256", "AES-256-GCM", "TLS_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384", "application/vnd.kubernetes.protobuf",
        "application/vnd.oci.image.manifest.v1+json", "application/x-www-form-urlencoded", "text/plain; charset=utf-8",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
        "x86_64-unknown-linux-gnu", "aarch64-apple-darwin", "linux/amd64,linux/arm64", "en_US.UTF-8", "Europe/Amsterdam",
        "America/Argentina/Buenos_Aires", "XMLHttpRequestEventTarget", "JSONWebKeySetProvider",
        // Durations, schedules, versions, times.
        "720h0m0s", "P1Y2M10DT2H30M", "0 3 * * 1-5", "*/15 * * * *", "Mon-Fri 09:00-17:00 UTC", "Mon-Sun 00:00-23:59 Europe/Amsterdam",
        "v2.3.1-rc.1+build.20261129.4f2a9c1", "1.0.0-alpha.beta.11", "2026-11-29T00:00:00Z", "2026-11-29T08:15:30.123456+01:00",
        "1795910400000", "20261129081530", "v1.31.2-eks-7f9249a", "go1.23.4 linux/amd64", "5.15.0-1072-aws",
        // Email addresses.
        "team-payments@example.com", "first.last+tokenctl-alerts@example.co.uk", "noreply@github.com",
        "49699333+dependabot[bot]@users.noreply.github.com", "orders-api-oncall@acme.pagerduty.com",
        "security-incident-response@payments.example.org",
        // Scopes and roles.
        "orders:read", "orders:write", "reports:read", "role:reports_read", "secrets:read, tokens:write",
        "repo:acme/orders-api:ref:refs/heads/main", "repo:acme/orders-api:environment:production",
        "https://www.googleapis.com/auth/cloud-platform", "api://orders-api/.default", "read:org write:repo_hook admin:public_key",
        "openid profile email offline_access", "orders.read orders.write payments.refund", "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com",
        // Identifiers that look like base64 but carry no randomness, and placeholders.
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "0000000000000000000000000000000000000000", "ffffffffffffffffffffffffffffffff",
        "deadbeefdeadbeefdeadbeefdeadbeef", "aaaa1111bbbb2222cccc3333dddd4444", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "REPLACE_ME_WITH_THE_REAL_TOKEN", "changeme-changeme-changeme-changeme", "ABABABABABABABABABABABABABABABAB",
        "abcabcabcabcabcabcabcabcabcabc", "Test1234Test1234Test1234Test1234", "LS0tLS0tLS0tLS0tLS0tLS0tLS0tLS0tLS0tLS0t",
        "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ==", "MTIzNDU2Nzg5MA==", "AAAAC3NzaC1lZDI1NTE5", "1234567890123456789012345678901234567890",
        "<your-github-token-here>", "${ORDERS_API_TOKEN}", "{{ .Values.ordersApi.token }}", "ghp_xxxxxxxx", "sk_live_...",
        "ghp_your_token_goes_here_with_underscores", "AKIAEXAMPLE", "eyJ is how every JSON Web Token begins",
        // Prose, as in notes and annotations.
        "rotated by tokenctl after the incident on 2026-11-29; see PAY-1234",
        "owner: team-payments, escalation: #payments-oncall, runbook: docs/runbooks/orders-api.md",
        "Token for the orders API CI pipeline in production (eu-west-1b)",
        "The scheduled rotation runs every 30 days during Mon-Fri 09:00-17:00 UTC",
    ]

    // MARK: Secret shapes


    static let base62 = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
    static let base64 = base62 + ["+", "/"]
    static let base64URL = base62 + ["-", "_"]
    static let upperAlphanumeric = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    static let lowerAlphanumeric = Array("0123456789abcdefghijklmnopqrstuvwxyz")
    static let hex = Array("0123456789abcdef")

    static func random(_ count: Int, _ alphabet: [Character], _ generator: inout SplitMix64) -> String {
        String((0..<count).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] })
    }

    static func randomBytes(_ count: Int, _ generator: inout SplitMix64) -> Data {
        Data((0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) })
    }

    static func base64URLEncoded(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Fake credentials with the shape and randomness of real ones, built from a fixed seed.
    static let secrets: [String] = {
        var g = SplitMix64(seed: 0x746F_6B65_6E63_746C)
        var values: [String] = []
        // GitHub.
        for _ in 0..<3 { values.append("ghp_" + random(36, base62, &g)) }
        values.append("gho_" + random(36, base62, &g))
        values.append("ghs_" + random(36, base62, &g))
        values.append("ghu_" + random(36, base62, &g))
        for _ in 0..<2 { values.append("github_pat_" + random(22, base62, &g) + "_" + random(59, base62, &g)) }
        // GitLab.
        for _ in 0..<3 { values.append("glpat-" + random(20, base64URL, &g)) }
        values.append("glrt-" + random(20, base64URL, &g))
        // AWS access key ids and secret access keys, alone and as a pair.
        for _ in 0..<3 { values.append("AKIA" + random(16, upperAlphanumeric, &g)) }
        for _ in 0..<2 { values.append("ASIA" + random(16, upperAlphanumeric, &g)) }
        for _ in 0..<4 { values.append(random(40, base64, &g)) }
        values.append("aws_access_key_id=AKIA\(random(16, upperAlphanumeric, &g)) aws_secret_access_key=\(random(40, base64, &g))")
        values.append("export AWS_SECRET_ACCESS_KEY=" + random(40, base64, &g))
        // Slack.
        for prefix in ["xoxb", "xoxp"] {
            for _ in 0..<2 {
                values.append("\(prefix)-\(random(11, Array("0123456789"), &g))-\(random(13, Array("0123456789"), &g))-\(random(24, base62, &g))")
            }
        }
        values.append("xapp-1-A0\(random(9, upperAlphanumeric, &g))-\(random(13, Array("0123456789"), &g))-\(random(64, hex, &g))")
        // Stripe.
        for _ in 0..<3 { values.append("sk_live_" + random(24, base62, &g)) }
        values.append("sk_live_" + random(99, base62, &g))
        values.append("rk_live_" + random(24, base62, &g))
        // JSON Web Tokens.
        let header = base64URLEncoded(Data(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        for subject in ["orders-api", "payments-ci", "reports-batch", "1234567890"] {
            let claims = #"{"sub":"\#(subject)","iat":1795910400,"exp":1795914000,"jti":"\#(random(16, base62, &g))"}"#
            values.append("\(header).\(base64URLEncoded(Data(claims.utf8))).\(base64URLEncoded(randomBytes(32, &g)))")
        }
        values.append("Authorization: Bearer \(header).\(base64URLEncoded(Data(#"{"sub":"x"}"#.utf8))).\(base64URLEncoded(randomBytes(32, &g)))")
        // PEM private keys.
        for label in ["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"] {
            let body = randomBytes(96, &g).base64EncodedString(options: .lineLength64Characters)
            values.append("-----BEGIN \(label)-----\n\(body)\n-----END \(label)-----\n")
        }
        // High-entropy base64 and base64url of common key sizes.
        for size in [18, 24, 32, 48, 64] { values.append(randomBytes(size, &g).base64EncodedString()) }
        for size in [32, 48] { values.append(base64URLEncoded(randomBytes(size, &g))) }
        // Hexadecimal keys.
        for count in [32, 40, 64, 64] { values.append(random(count, hex, &g)) }
        values.append(random(40, hex, &g).uppercased())
        // Random letters and digits.
        for count in [24, 32, 48] { values.append(random(count, base62, &g)) }
        values.append(random(32, lowerAlphanumeric, &g))
        // Other vendors.
        values.append("npm_" + random(36, base62, &g))
        values.append("AIza" + random(35, base64URL, &g))
        values.append("hvs." + random(24, base62, &g))
        values.append("dop_v1_" + random(64, hex, &g))
        values.append("sk-proj-" + random(48, base64URL, &g))
        values.append("tkc_" + random(49, base62, &g))
        // Secrets inside longer values.
        values.append("token=ghp_" + random(36, base62, &g))
        values.append("https://x-access-token:ghp_\(random(36, base62, &g))@github.com/acme/orders-api.git")
        values.append("{\"password\": \"\(randomBytes(24, &g).base64EncodedString())\"}")
        values.append("/etc/x/\(random(36, base62, &g))/app.env")
        return values
    }()

    // MARK: Tests

    @Test func corpusIsLargeEnough() {
        #expect(Self.ordinary.count >= 200, "\(Self.ordinary.count) ordinary values")
        #expect(Self.secrets.count >= 50, "\(Self.secrets.count) secrets")
    }

    @Test(arguments: ordinary)
    func ordinaryValuePasses(_ value: String) {
        #expect(SecretScanner.finding(in: value) == nil, "flagged an ordinary value: \(value)")
        #expect(SecretScanner.lineFinding("  note: \(value)") == nil, "flagged the line of an ordinary value: \(value)")
    }

    /// Failure messages name a secret by its first 4 characters only.
    @Test(arguments: secrets)
    func secretIsCaught(_ value: String) throws {
        let finding = try #require(SecretScanner.match(in: value), "missed a secret: \(value.prefix(4))… (\(value.count) characters)")
        #expect(SecretScanner.finding(in: value) == finding.description)
        #expect(SecretScanner.redact(value) != value, "not redacted: \(value.prefix(4))…")
        #expect(SecretScanner.lineFinding(value) != nil, "line not withheld: \(value.prefix(4))…")
        // What is printed holds the kind and a masked excerpt, never the value or any 8 characters of its second half.
        let printed = finding.description
        #expect(printed.contains(finding.kind) && printed.contains(finding.excerpt))
        #expect(finding.excerpt.count <= 30, "excerpt too long: \(finding.excerpt.count) characters")
        #expect(!printed.contains(value))
        let tail = Array(value.suffix(value.count / 2))
        for start in 0..<max(0, tail.count - 7) {
            let window = String(tail[start..<start + 8])
            if window.contains(where: { $0 == "-" || $0 == " " || $0 == "\n" || $0 == "." }) { continue }
            #expect(!printed.contains(window), "the finding shows part of the secret \(value.prefix(4))…")
        }
        // The message is itself safe to print whole: the decoder's message filter would otherwise blank it.
        #expect(SecretScanner.finding(in: "this value looks like a secret (\(printed))") == nil, "\(printed)")
    }

    @Test func findingsShowTheKindAndAMaskedExcerpt() throws {
        let github = try #require(SecretScanner.match(in: "ghp_" + String(repeating: "a1B2", count: 9)))
        #expect(github.kind == "a GitHub token")
        #expect(github.excerpt == "ghp_…")
        #expect(github.length == 40)
        #expect(github.description == "a GitHub token (ghp_…, 40 characters)")

        let random = try #require(SecretScanner.match(in: "Q2hhbmdlTWUhX3k4ZlR3cUpOMnZM0x9aK"))
        #expect(random.kind == "a long random string")
        #expect(random.excerpt == "Q2hh…")
        #expect(random.length == 33)

        let aws = try #require(SecretScanner.match(in: "aws_access_key_id=AKIACANARY7Q3W2E1R0T"))
        #expect(aws.kind == "an AWS access key id" && aws.excerpt == "AKIA…")

        let hex = try #require(SecretScanner.match(in: "api-key: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"))
        #expect(hex.kind == "a long hexadecimal string" && hex.excerpt == "9f86…" && hex.length == 64)

        let pem = try #require(SecretScanner.match(in: "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIA\n-----END EC PRIVATE KEY-----"))
        #expect(pem.kind == "a PEM private key")
        #expect(pem.description == "a PEM private key (BEGIN EC PRIVATE KEY)")

        // The path around a random segment is not shown, only the segment's first characters.
        let path = try #require(SecretScanner.match(in: "/etc/x/aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7/app.env"))
        #expect(path.excerpt == "aB3d…" && path.length == 39)
    }

    /// Through the decoder: the literal-secret diagnostic names the kind and shows the masked excerpt, and no output
    /// holds the secret; the issue's ordinary values load without one.
    @Test func diagnosticsShowTheMaskedExcerpt() throws {
        let secret = Self.secrets[0]
        let result = Fixture.load(Fixture.token(spec: """
              issuer: local
              scopes: [orders:read]
              lifespan: 90d
              deliverTo:
                - {store: vault, key: \(secret)}
            """))
        let diagnostic = try #require(result.diagnostics.first { $0.code == "literal-secret" }, "\(result.diagnostics.map(\.message))")
        #expect(diagnostic.message.contains("a GitHub token (ghp_…, 40 characters)"), "\(diagnostic.message)")
        var renderer = DiagnosticRenderer(colors: false)
        let output = renderer.render(result.diagnostics) + DiagnosticRenderer.json(result)
        #expect(!output.contains(secret) && !output.contains(String(secret.dropFirst(4).prefix(12))), "the output holds the secret")

        let ordinary = Fixture.load(Fixture.token(spec: """
              issuer: local
              scopes: [orders:read]
              lifespan: 90d
              deliverTo:
                - {store: vault, key: "payments/orders-api-ci-production-eu-west-1b"}
            """).replacingOccurrences(of: "  owner: team-payments", with: """
              owner: team-payments
              annotations:
                dashboard: "https://grafana.example.com/d/aBcD1234/orders-overview?orgId=1&var-env=prod&from=now-6h"
                kustomize: kustomize.config.k8s.io/v1beta1
            """))
        #expect(!ordinary.diagnostics.contains { $0.code == "literal-secret" }, "\(ordinary.diagnostics.map(\.message))")
    }

    @Test func digestsAreIdentifiersOnlyAfterTheirLabel() {
        let digest = Self.digests[0]
        #expect(SecretScanner.finding(in: "ghcr.io/acme/orders-api@sha256:" + digest) == nil)
        #expect(SecretScanner.lineFinding("    image: ghcr.io/acme/orders-api@sha256:" + digest) == nil)
        #expect(SecretScanner.finding(in: "X-Hub-Signature-256: sha256=" + digest) == nil)
        #expect(SecretScanner.finding(in: digest) != nil, "64 hexadecimal digits alone are a secret")
        #expect(SecretScanner.finding(in: "token: " + digest) != nil)
    }

    @Test func prefixesNeedTheirTokenAlphabet() {
        // An AWS key id is exactly 16 capitals or digits after its prefix.
        #expect(SecretScanner.finding(in: "AKIACANARY7Q3W2E1R0T") != nil)
        #expect(SecretScanner.finding(in: "AKIACANARY7Q3W2E1R0Tx") == nil)
        // Letters-and-digits tokens are not names with underscores.
        #expect(SecretScanner.finding(in: "npm_config_cache_directory_for_ci_builds") == nil)
        #expect(SecretScanner.finding(in: "npm_" + String(repeating: "q7Zx2Lw9Rt4Yp6Bn1Cd5", count: 2)) != nil)
    }
}
