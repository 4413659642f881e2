// `xl help VERB` for the verbs here: the text Xen 4.17's xl prints (tools/xl/xl_cmdtable.c
// through help() in xl.c), which xl also prints for a usage mistake.

export const XL_HELP: Record<string, string> = {
  list: "Usage: xl [-vtT] list [options] [Domain]\n\n\nList information about all/some domains.\n\nOptions:\n\n-l, --long              Output all VM details\n-v, --verbose           Prints out UUIDs and security context\n-Z, --context           Prints out security context\n-c, --cpupool           Prints the cpupool the domain is in\n-n, --numa              Prints out NUMA node affinity\n",
  info: "Usage: xl [-vtT] info -n, --numa         List host NUMA topology information\n\nGet information about Xen host.\n\n",
  "vcpu-list":
    "Usage: xl [-vtT] vcpu-list [Domain, ...]\n\nList the VCPUs for all/some domains.\n\n",
  "sched-credit":
    "Usage: xl [-vtTf] sched-credit [-d <Domain> [-w[=WEIGHT]|-c[=CAP]]] [-s [-t TSLICE] [-r RATELIMIT]] [-p CPUPOOL]\n\nGet/set credit scheduler parameters.\n\nOptions:\n\n-d DOMAIN, --domain=DOMAIN        Domain to modify\n-w WEIGHT, --weight=WEIGHT        Weight (int)\n-c CAP, --cap=CAP                 Cap (int)\n-s         --schedparam           Query / modify scheduler parameters\n-t TSLICE, --tslice_ms=TSLICE     Set the timeslice, in milliseconds\n-r RLIMIT, --ratelimit_us=RLIMIT  Set the scheduling rate limit, in microseconds\n-m DLY, --migration_delay_us=DLY  Set the migration delay, in microseconds\n-p CPUPOOL, --cpupool=CPUPOOL     Restrict output to CPUPOOL\n",
  "sched-credit2":
    "Usage: xl [-vtTf] sched-credit2 [-d <Domain> [-w[=WEIGHT]]] [-p CPUPOOL]\n\nGet/set credit2 scheduler parameters.\n\nOptions:\n\n-d DOMAIN, --domain=DOMAIN     Domain to modify\n-w WEIGHT, --weight=WEIGHT     Weight (int)\n-c CAP,    --cap=CAP           Cap (int)\n-s         --schedparam        Query / modify scheduler parameters\n-r RLIMIT, --ratelimit_us=RLIMIT Set the scheduling rate limit, in microseconds\n-p CPUPOOL, --cpupool=CPUPOOL  Restrict output to CPUPOOL\n",
  domid: "Usage: xl [-vtT] domid <DomainName>\n\nConvert a domain name to domain id.\n\n",
  domname: "Usage: xl [-vtT] domname <DomainId>\n\nConvert a domain id to domain name.\n\n",
  "block-list":
    "Usage: xl [-vtT] block-list <Domain(s)>\n\nList virtual block devices for a domain.\n\n",
  "network-list":
    "Usage: xl [-vtT] network-list <Domain(s)>\n\nList virtual network interfaces for a domain.\n\n",
  dmesg:
    "Usage: xl [-vtT] dmesg [-c]\n\nRead and/or clear dmesg buffer.\n\nOptions:\n\n  -c                        Clear dmesg buffer as well as printing it\n",
};
