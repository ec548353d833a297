"""registry-pull-lab: replay how a kubelet pulls from a private TLS + basic-auth registry."""
