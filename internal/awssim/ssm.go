package awssim

func (r *Region) registerSSM() {
}
