/// Manifest text shared by the tests.
package enum ManifestText {
    /// The builtin issuer `local`, the encrypted store `vault` and, optionally, the dotenv store `envfile`.
    package static func header(ghosts: String = "report", vaultPath: String = "secrets.vault", dotenv: Bool = true) -> String {
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

    /// A token `apps/NAME` of the issuer `local`, delivered to `envfile` under its name.
    package static func token(_ name: String, lifespan: String = "30d", every: String = "20d", overlap: String = "1m") -> String {
        """
        ---
        apiVersion: tokenctl/v1
        kind: Token
        metadata: {name: \(name), namespace: apps, owner: team-apps}
        spec:
          issuer: local
          scopes: [orders:read, reports:read]
          lifespan: \(lifespan)
          rotation: {every: \(every), overlap: \(overlap)}
          deliverTo: [{store: envfile, key: apps/\(name)}]

        """
    }
}
