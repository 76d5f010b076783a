"""The pipeline stages, one module per Lambda: typed input in, one job, typed result out.

A handler imports only its own stage, so a stage that needs neither Pillow nor
onnxruntime never pays for them at cold start.
"""
