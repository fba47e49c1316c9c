# An image stream is imported by its name, from the provider's content store.
terraform import autoami_image_stream.web web/al2023
