// The version `hyperlab --version` prints: the toolstack package's own.
import pkg from "../../package.json";

export const VERSION: string = pkg.version;
