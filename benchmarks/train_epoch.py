"""Course model training throughput: one epoch of 60,000 28x28 images, batch 128, Adam (issue targets >= 1/3
of PyTorch for the engine, >= 1.0 of the best peer for performance). Usage: python benchmarks/train_epoch.py"""

from _course_compare import main

if __name__ == "__main__":
    main("train")
