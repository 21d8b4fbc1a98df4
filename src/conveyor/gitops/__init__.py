"""GitOps: edit manifests as text (kustomization images, Flux setters, Helm values),
run git (:mod:`.git`), and update a manifest repository race-safely (:mod:`.update`)."""
