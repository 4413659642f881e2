// The version results.json names: the study package's own.
import pkg from "../package.json";

export const STUDY_VERSION: string = pkg.version;
