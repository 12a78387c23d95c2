# Packer 1.7 and later install builders as plugins: `packer init packer/` reads this file.
# (Debian's packer 1.6.6, which `make check-deploy` validates docker-worker.pkr.hcl with, has
# the amazon builder built in and does not know this block; it checks this file's syntax only.)
packer {
  required_version = ">= 1.7.0"
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.2.0"
    }
  }
}
