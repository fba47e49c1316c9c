# The ID is the image stream's name. The next plan finds the revision's AMIs
# in the configured targets by their tags, and the apply adopts them
# without making new ones.
terraform import autoami_published_ami.web web/debian-12
