// `xl help VERB` for the lifecycle verbs: the text Debian's xl 4.17 prints (tools/xl/xl_cmdtable.c
// through help() in xl.c), which xl also prints after a usage mistake.

export const XL_LIFECYCLE_HELP: Record<string, string> = {
  create:
    "Usage: xl [-vtTfN] create <ConfigFile> [options] [vars]\n\nCreate a domain from config file <filename>.\n\nOptions:\n\n-c                      Connect to the console after the domain is created.\n-d                      Enable debug messages.\n-e                      Do not wait in the background for the death of the domain.\n-F                      Run in foreground until death of the domain.\n-f FILE, --defconfig=FILE\n                     Use the given configuration file.\n-h                      Print this help.\n-n, --dryrun            Dry run - prints the resulting configuration\n                         (deprecated in favour of global -N option).\n-p                      Leave the domain paused after it is created.\n-q, --quiet             Quiet.\n-V, --vncviewer         Connect to the VNC display after the domain is created.\n-A, --vncviewer-autopass\n                        Pass VNC password to viewer via stdin.\n--ignore-global-affinity-masks Ignore global masks in xl.conf.\n",
  destroy:
    "Usage: xl [-vtTf] destroy [options] <Domain>\n\n\nTerminate a domain immediately.\n\nOptions:\n\n-f                      Permit destroying domain 0, which will only succeed\n                        when run from disaggregated toolstack domain with a\n                        hardware domain distinct from domain 0.\n",
  pause: "Usage: xl [-vtTf] pause <Domain>\n\nPause execution of a domain.\n\n",
  unpause: "Usage: xl [-vtTf] unpause <Domain>\n\nUnpause a paused domain.\n\n",
  shutdown:
    "Usage: xl [-vtTf] shutdown [options] <-a|Domain>\n\nIssue a shutdown signal to a domain.\n\nOptions:\n\n-a, --all               Shutdown all guest domains.\n-h                      Print this help.\n-F                      Fallback to ACPI power event for HVM guests with\n                        no PV drivers.\n-w, --wait              Wait for guest(s) to shutdown.\n\n",
  reboot:
    "Usage: xl [-vtTf] reboot [options] <-a|Domain>\n\nIssue a reboot signal to a domain.\n\nOptions:\n\n-a, --all               Shutdown all guest domains.\n-h                      Print this help.\n-F                      Fallback to ACPI reset event for HVM guests with\n                        no PV drivers.\n-w, --wait              Wait for guest(s) to reboot.\n\n",
  save: "Usage: xl [-vtTf] save [options] <Domain> <CheckpointFile> [<ConfigFile>]\n\nSave a domain state to restore later.\n\nOptions:\n\n-h  Print this help.\n-c  Leave domain running after creating the snapshot.\n-p  Leave domain paused after creating the snapshot.\n-D  Store the domain id in the configuration.\n",
  restore:
    "Usage: xl [-vtTf] restore [options] [<ConfigFile>] <CheckpointFile>\n\nRestore a domain from a saved state.\n\nOptions:\n\n-h                       Print this help.\n-p                       Do not unpause domain after restoring it.\n-e                       Do not wait in the background for the death of the domain.\n-d                       Enable debug messages.\n-V, --vncviewer          Connect to the VNC display after the domain is created.\n-A, --vncviewer-autopass Pass VNC password to viewer via stdin.\n",
  "mem-set":
    "Usage: xl [-vtTf] mem-set <Domain> <MemMB['b'[bytes]|'k'[KB]|'m'[MB]|'g'[GB]|'t'[TB]]>\n\nSet the current memory usage for a domain.\n\n",
  "vcpu-pin":
    "Usage: xl [-vtTfN] vcpu-pin [option] <Domain> <VCPU|all> <Hard affinity|-|all> <Soft affinity|-|all>\n\nSet which CPUs a VCPU can use.\n\nOptions:\n\n-f, --force        undo an override pinning done by the kernel\n--ignore-global-affinity-masks Ignore global masks in xl.conf\n",
  console:
    "Usage: xl [-vtT] console [options] <Domain>\n-t <type>       console type, pv , serial or vuart\n-n <number>     console number\n\nAttach to domain's console.\n\n",
  "block-attach":
    "Usage: xl [-vtTfN] block-attach <Domain> <disk-spec-component(s)>...\n\nCreate a new virtual block device.\n\n",
  "block-detach":
    "Usage: xl [-vtTf] block-detach [option] <Domain> <DevId>\n\nDestroy a domain's virtual block device.\n\nOptions:\n\n-f, --force        do not wait for the domain to release the device\n",
  "network-attach":
    "Usage: xl [-vtTfN] network-attach <Domain> [type=<type>] [mac=<mac>] [bridge=<bridge>] [ip=<ip>] [script=<script>] [backend=<BackDomain>] [vifname=<name>] [rate=<rate>] [model=<model>] [accel=<accel>] [mtu=<mtu>]\n\nCreate a new virtual network device.\n\n",
  "network-detach":
    "Usage: xl [-vtTf] network-detach <Domain> <DevId|mac>\n\nDestroy a domain's virtual network device.\n\n",
};
