// The pod sandbox's pause program for the cluster harness (test/cluster); no dependencies.
// Built by scripts/build-cluster-tools.sh, packaged as a FROM scratch image.
module member-greeter/cluster-tools/pause

go 1.26.0
