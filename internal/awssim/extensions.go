package awssim

// registerExtensions is where the files adding services on top of the core
// (EC2 Fleet, Spot Fleet, Auto Scaling groups) hook into New: add one call
// per file, e.g. r.registerFleetActions(). See doc.go.
func (r *Region) registerExtensions() {
	r.registerFleetActions()     // fleet.go
	r.registerSpotFleetActions() // spotfleet.go
	r.registerASGActions()       // asg.go
}
