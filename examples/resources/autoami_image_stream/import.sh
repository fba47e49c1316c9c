# An image stream is imported by its name, from the provider's content store.
terraform import autoami_image_stream.web web/al2023

# A stream in a content store of its own: BUCKET[/PREFIX]:NAME.
terraform import autoami_image_stream.unikernel acme-edge-images/autoami:edge/unikernel
