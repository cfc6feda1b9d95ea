import TokenctlManifest
print("bench")
