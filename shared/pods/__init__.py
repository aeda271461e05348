"""podq.shared.pods: what podq knows about Pods, in one place.

:mod:`.mergekeys` is the Pod's strategic-merge table, used by the workers to merge a
job's ``pod_override`` and by kubesim to apply strategic-merge patches. :mod:`.templates`
is the one template store: intake's admission and the workers find, read and check
named pod templates through it, with the same rules.
"""
