"""One cell end to end: the backbone, the one training path, the joint run, fine-tuned save and load, trackers, what a run costs."""
