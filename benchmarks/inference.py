"""Course model inference throughput: 10,000 images, batch 1000. Usage: python benchmarks/inference.py"""

from _course_compare import main

if __name__ == "__main__":
    main("infer")
