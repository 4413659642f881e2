export {
  XsClient,
  type XsClientTransport,
  XsOps,
  XsTransaction,
  XsWatch,
  type XsWatchEvent,
} from "./client";
export { XenstoreError, type XenstoreErrorCode } from "./errors";
export { canonicalize, domainPath, isValidNodename } from "./paths";
export {
  parsePerm,
  permToString,
  XS_PERM_NONE,
  XS_PERM_READ,
  XS_PERM_WRITE,
  type XsPerm,
} from "./perms";
export { XenstoreRing, XenstoreRingFrontend, type XsEventChannel } from "./ring";
export { type RunningXenstored, type RunXenstoredOptions, runXenstored } from "./run";
export { listenUnix, UNIX_PATH_MAX, type XenstoredSocketServer } from "./socket";
export { encodeMessage, MessageReader, XSD_SOCKMSG_SIZE, type XsMessage } from "./wire";
export {
  type ConnectOptions,
  type DomainChannel,
  type MapDomainInterface,
  parseDomainList,
  XENSTORED_DEFAULT_QUOTAS,
  Xenstored,
  type XenstoredOptions,
  type XenstoredQuotas,
  XsConnection,
} from "./xenstored";
