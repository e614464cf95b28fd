"""Lower precisions (OpenVINO bf16 and int8) and the accuracy gate that decides whether a user's
weights may run at one: ``python -m face_alignment.precision`` (see :mod:`.cli`).

Heatmap networks lose their peaks in int8 more easily than classifiers lose their classes, and
random weights cannot tell what a precision does to trained landmarks. So int8 models are made
only from the user's weights, calibrated on the user's face crops, and kept only when the
landmarks they give stay close to fp32's on those faces.
"""
