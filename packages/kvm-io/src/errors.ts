/* The errors a user of @hyperlab/kvm-io can make (guest input never throws). */
import { HyperlabError } from "@hyperlab/core";

export type KvmIoErrorCode = "KVM_IO_NO_GSI" | "KVM_IO_BAD_DOMAIN" | "KVM_IO_BAD_CONFIG";

export type KvmIoError = HyperlabError<KvmIoErrorCode>;

export function kvmIoError(code: KvmIoErrorCode, message: string): KvmIoError {
  return new HyperlabError(code, message);
}
