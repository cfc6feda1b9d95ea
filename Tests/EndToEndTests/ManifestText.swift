/// Manifest text shared by the end-to-end tests.
enum ManifestText {
    /// The builtin issuer `local`, the encrypted store `vault` and, optionally, the dotenv store `envfile`.
    static func header(ghosts: String = "report", vaultPath: String = "secrets.vault", dotenv: Bool = true) -> String {
        var text = """
            apiVersion: tokenctl/v1
            kind: Issuer
            metadata: {name: local}
            spec: {type: builtin, ghosts: \(ghosts)}
            ---
            apiVersion: tokenctl/v1
            kind: Store
            metadata: {name: vault}
            spec: {type: encrypted-file, encryptedFile: {path: \(vaultPath), key: env:TOKENCTL_MASTER_KEY}}

            """
        if dotenv {
            text += """
                ---
                apiVersion: tokenctl/v1
                kind: Store
                metadata: {name: envfile}
                spec: {type: dotenv, dotenv: {path: app.env}}

                """
        }
        return text
    }
}
