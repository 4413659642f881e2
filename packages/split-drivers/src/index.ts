// @hyperlab/split-drivers: Xen's split drivers on the guest kernel.

// xenbus (the guest's xenstore connection and the device state machine)

// shared rings (io/ring.h)
