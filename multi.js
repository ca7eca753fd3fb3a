const net=require('net'),dgram=require('dgram');
const C=+process.argv[2]||50;
const q=Buffer.from('001dabcd00000001000000000000076578616d706c65036f72670000fc0001','hex');
let bytes=0; const socks=[];
for(let i=0;i<C;i++){const s=net.connect(63053,'127.0.0.1'); s.on('data',d=>bytes+=d.length); s.on('error',()=>{}); s.write(Buffer.concat(Array(2000).fill(q))); socks.push(s);}
const u=dgram.createSocket('udp4'); let worst=0,n=0,t1; u.on('message',()=>{const d=Date.now()-t1; worst=Math.max(worst,d); n++;});
const iv=setInterval(()=>{t1=Date.now(); u.send(Buffer.from('abcd01000001000000000000076578616d706c65036f72670000010001','hex'),63053,'127.0.0.1');},100);
setTimeout(()=>{console.log(C,'connections: received',(bytes/1e6).toFixed(0),'MB; udp answered',n,'worst',worst,'ms'); for(const s of socks)s.destroy(); clearInterval(iv); u.close();},5000);
