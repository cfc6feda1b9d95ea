import Foundation

/// Wrappers around a reference plugin that fail the way real plugins do.
enum PluginWrapper {
    /// A plugin that, the first time it is asked to issue, lets the real plugin make the change at its backend and is
    /// then killed (SIGKILL) before it answers: the crash between the backend's change and tokenctl's record.
    static func killedOnceAfterIssuing(_ plugin: String, in directory: String) -> String {
        let wrapper = directory + "/crashing-plugin"
        let marker = directory + "/crashed-once"
        BinaryRunner.write("""
            #!/bin/sh
            input=$(cat)
            out=$(printf '%s' "$input" | "\(plugin)")
            case "$input" in *'"operation":"issue"'*) if [ ! -e "\(marker)" ]; then : > "\(marker)"; kill -9 $$; fi;; esac
            printf '%s' "$out"
            """, to: wrapper)
        chmod(wrapper, 0o755)
        return wrapper
    }
}
