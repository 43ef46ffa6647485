package join

// ChoosePartitions returns the number of partitions NewSpiller chooses for
// lists of the given sizes, a budget and a (non-zero) number of workers,
// without creating a Spiller.
func ChoosePartitions(sizes []int, budget int64, workers int) (int, error) {
	b, _, err := choosePartitions(sizes, budget, workers)
	return 1 << b, err
}
