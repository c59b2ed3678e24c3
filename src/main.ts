// `npm start`: serve the x86-64 demo guest (2 VPs, embedded machine) on 127.0.0.1:50051.
import { main } from "./cli";

main(["serve", ...process.argv.slice(2)]);
