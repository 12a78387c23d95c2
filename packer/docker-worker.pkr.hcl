# The docker-worker machine image (AMI): Debian 13 (trixie), Debian's Docker engine, the
# release package from `make package`, and the units, configuration and kernel modules from
# deploy/ — all installed by deploy/provision.sh from inside the package, as the provisioning
# test (test/deploy/provision.test.ts) runs it. The worker's keys are made at each instance's
# first boot (docker-worker-keys.service), never here.
#
#   make package
#   packer build -var package_path=dist/docker-worker-0.1.0-linux-x64.tar.gz packer/docker-worker.pkr.hcl
#
# Packer 1.7 and later need the amazon plugin first: `packer init packer/` (packer/plugins.pkr.hcl),
# then `packer build -var ... packer/`. README.md "Deployment" says what AWS permissions it needs.

variable "package_path" {
  type        = string
  description = "The release tarball from `make package`: dist/docker-worker-<version>-linux-<arch>.tar.gz (its arch must match base_ami_architecture)."
}

variable "region" {
  type        = string
  default     = "us-east-1"
  description = "AWS region the image is built in (and registered in)."
}

variable "instance_type" {
  type        = string
  default     = "m5.large"
  description = "Instance type of the build machine (not of the workers)."
}

variable "base_ami_name" {
  type        = string
  default     = "debian-13-amd64-*"
  description = "Name filter of the base image: Debian's official AMIs (debian-13-arm64-* for Graviton, with an arm64 package)."
}

variable "base_ami_owner" {
  type        = string
  default     = "136693071363"
  description = "AWS account publishing the base image (136693071363: Debian's cloud team)."
}

variable "base_ami_architecture" {
  type        = string
  default     = "x86_64"
  description = "x86_64 (package linux-x64) or arm64 (package linux-arm64)."
}

variable "host_kind" {
  type        = string
  default     = "aws"
  description = "How instances learn their configuration: aws (user-data, the worker reads it) or worker-runner (Taskcluster's start-worker, under worker-manager)."
  validation {
    condition     = contains(["aws", "worker-runner"], var.host_kind)
    error_message = "The host_kind is aws (the worker reads the user-data) or worker-runner (with start_worker_path)."
  }
}

variable "start_worker_path" {
  type        = string
  default     = ""
  description = "For host_kind worker-runner: Taskcluster's start-worker binary (from the Taskcluster release your deployment runs), for this architecture."
}

variable "root_volume_gb" {
  type        = number
  default     = 40
  description = "Root volume size. Instances with instance-store disks keep Docker and the caches there."
}

variable "ami_name_prefix" {
  type        = string
  default     = "docker-worker"
  description = "The image is named <prefix>-<version>-<timestamp>."
}

variable "subnet_id" {
  type        = string
  default     = ""
  description = "Subnet of the build machine (empty: the default VPC's)."
}

locals {
  package_file = basename(var.package_path)
  version      = regex_replace(local.package_file, "^docker-worker-(.+)-linux-[a-z0-9]+\\.tar\\.gz$", "$1")
  timestamp    = formatdate("YYYYMMDD-hhmmss", timestamp())
  # Only a worker-runner image carries start-worker.
  uploads          = compact([var.package_path, var.start_worker_path])
  start_worker_arg = var.start_worker_path == "" ? "" : "--start-worker /tmp/docker-worker-upload/${basename(var.start_worker_path)}"
}

source "amazon-ebs" "docker-worker" {
  region        = var.region
  instance_type = var.instance_type
  subnet_id     = var.subnet_id
  source_ami_filter {
    filters = {
      name                = var.base_ami_name
      architecture        = var.base_ami_architecture
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = [var.base_ami_owner]
    most_recent = true
  }
  ssh_username    = "admin"
  ami_name        = "${var.ami_name_prefix}-${local.version}-${local.timestamp}"
  ami_description = "Taskcluster docker-worker ${local.version} (${var.host_kind}) on Debian 13"
  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = var.root_volume_gb
    volume_type           = "gp3"
    iops                  = 3000
    throughput            = 125
    delete_on_termination = true
  }
  tags = {
    Name                    = "${var.ami_name_prefix}-${local.version}"
    "docker-worker:version" = local.version
    "docker-worker:host"    = var.host_kind
    "docker-worker:package" = local.package_file
  }
}

build {
  sources = ["source.amazon-ebs.docker-worker"]

  provisioner "shell" {
    inline = ["mkdir -p /tmp/docker-worker-upload"]
  }

  provisioner "file" {
    sources     = local.uploads
    destination = "/tmp/docker-worker-upload/"
  }

  # deploy/provision.sh from inside the package: the scripts and the package always match.
  provisioner "shell" {
    inline = [
      "set -eu",
      "mkdir -p /tmp/docker-worker-unpacked",
      "tar -xzf /tmp/docker-worker-upload/${local.package_file} -C /tmp/docker-worker-unpacked --strip-components=1",
      "sudo /tmp/docker-worker-unpacked/deploy/provision.sh --package /tmp/docker-worker-upload/${local.package_file} --host ${var.host_kind} ${local.start_worker_arg}",
      "sudo /tmp/docker-worker-unpacked/deploy/seal-image.sh",
      "sudo rm -rf /tmp/docker-worker-unpacked /tmp/docker-worker-upload",
    ]
  }
}
