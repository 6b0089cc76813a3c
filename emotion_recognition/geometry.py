"""Box arithmetic. A box is (x, y, w, h) in frame pixels; tracking, drawing, tests and benchmarks share it."""


def overlap_area(a, b):
    """The area two boxes share."""
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(0, width) * max(0, height)


def iou(a, b):
    """Intersection over union of two boxes: 1 for the same box, 0 for boxes apart."""
    shared = overlap_area(a, b)
    return shared / float(a[2] * a[3] + b[2] * b[3] - shared) if shared else 0.0


def widened(box, share):
    """The box grown by `share` of its size on each side (floats; it may reach outside the frame)."""
    x, y, w, h = box
    return x - w * share, y - h * share, w * (1 + 2 * share), h * (1 + 2 * share)


def inside(inner, outer):
    """Whether `inner` lies wholly inside `outer`."""
    x, y, w, h = inner
    left, top, width, height = outer
    return left <= x and top <= y and x + w <= left + width and y + h <= top + height


def centre_inside(box, region):
    """Whether the centre of `box` lies inside `region`."""
    x, y, w, h = box
    left, top, width, height = region
    return left <= x + w / 2 <= left + width and top <= y + h / 2 <= top + height
